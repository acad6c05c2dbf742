package imapd

import (
	"encoding/binary"
	"errors"
	"io"
)

// A message's parsed MIME structure, encoded at delivery so that the first
// FETCH BODYSTRUCTURE (or BODY, or BODY[1.2]) of a new mailbox does not
// read and parse every message: the delivery path calls EncodeStructure
// (internal/delivery, Deliverer.SetStructure), the store keeps the bytes
// with the message (store.Delivery.Structure, store.Structures), and the
// fetcher decodes them, parsing the message only for one stored without
// (or with an encoding it does not know).
//
// Encoding: structVersion, the parsed length, then the root part; a part
// is its offsets and line count, its strings, parameters, languages, a
// flag byte (multipart, message/rfc822, truncated, has a held header), the
// held header, its children.

const structVersion = 1

// EncodeStructure parses a raw message — as stored: with the header fields
// a delivery puts on top — and encodes its MIME structure.
func EncodeStructure(r io.Reader) ([]byte, error) {
	root, err := parseStructure(r)
	if err != nil {
		return nil, err
	}
	b := []byte{structVersion}
	b = binary.AppendUvarint(b, uint64(root.end))
	return appendPart(b, root), nil
}

func appendPart(b []byte, p *mimePart) []byte {
	for _, v := range []int64{p.start, p.bodyStart, p.end, p.lines} {
		b = binary.AppendUvarint(b, uint64(v))
	}
	for _, s := range []string{p.typ, p.subtype, p.id, p.desc, p.cte, p.md5, p.disp, p.location} {
		b = appendString(b, s)
	}
	b = appendParams(b, p.params)
	b = appendParams(b, p.dispParams)
	b = binary.AppendUvarint(b, uint64(len(p.lang)))
	for _, l := range p.lang {
		b = appendString(b, l)
	}
	var flags byte
	if p.multipart {
		flags |= 1
	}
	if p.message {
		flags |= 2
	}
	if p.truncated {
		flags |= 4
	}
	if p.header != nil {
		flags |= 8
	}
	b = append(b, flags)
	if p.header != nil {
		b = binary.AppendUvarint(b, uint64(len(p.header)))
		b = append(b, p.header...)
	}
	b = binary.AppendUvarint(b, uint64(len(p.children)))
	for _, c := range p.children {
		b = appendPart(b, c)
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendParams(b []byte, ps []mimeParam) []byte {
	b = binary.AppendUvarint(b, uint64(len(ps)))
	for _, p := range ps {
		b = appendString(b, p.name)
		b = appendString(b, p.value)
	}
	return b
}

// decodeStructure decodes what EncodeStructure made of a message whose
// stored size is size. An encoding that is not whole, not of this version
// or not of a message of that size is an error: the caller parses the
// message instead.
func decodeStructure(b []byte, size int64) (*mimePart, error) {
	if len(b) == 0 || b[0] != structVersion {
		return nil, errors.New("structure: unknown encoding")
	}
	d := &structDecoder{b: b[1:]}
	if n := int64(d.uvarint()); d.err == nil && n != size {
		return nil, errors.New("structure: not of this message")
	}
	root := d.part(0)
	if d.err == nil && len(d.b) > 0 {
		d.err = errors.New("structure: bytes after the root")
	}
	if d.err != nil {
		return nil, d.err
	}
	return root, nil
}

type structDecoder struct {
	b   []byte
	err error
}

func (d *structDecoder) fail() {
	if d.err == nil {
		d.err = errors.New("structure: truncated")
	}
	d.b = nil
}

func (d *structDecoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a number of elements, each at least a byte long.
func (d *structDecoder) count() int {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
		return 0
	}
	return int(n)
}

func (d *structDecoder) bytes() []byte {
	n := d.count()
	if d.err != nil {
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *structDecoder) str() string { return string(d.bytes()) }

func (d *structDecoder) params() []mimeParam {
	n := d.count()
	if n == 0 {
		return nil
	}
	ps := make([]mimeParam, n)
	for i := range ps {
		ps[i] = mimeParam{d.str(), d.str()}
	}
	return ps
}

func (d *structDecoder) part(depth int) *mimePart {
	p := &mimePart{}
	if depth > maxMIMEDepth+1 {
		d.err = errors.New("structure: too deep")
		return p
	}
	for _, v := range []*int64{&p.start, &p.bodyStart, &p.end, &p.lines} {
		*v = int64(d.uvarint())
	}
	for _, s := range []*string{&p.typ, &p.subtype, &p.id, &p.desc, &p.cte, &p.md5, &p.disp, &p.location} {
		*s = d.str()
	}
	p.params = d.params()
	p.dispParams = d.params()
	if n := d.count(); n > 0 {
		p.lang = make([]string, n)
		for i := range p.lang {
			p.lang[i] = d.str()
		}
	}
	if len(d.b) == 0 {
		d.fail()
		return p
	}
	flags := d.b[0]
	d.b = d.b[1:]
	p.multipart, p.message, p.truncated = flags&1 != 0, flags&2 != 0, flags&4 != 0
	if flags&8 != 0 {
		p.header = append([]byte{}, d.bytes()...)
	}
	if n := d.count(); n > 0 && d.err == nil {
		p.children = make([]*mimePart, n)
		for i := range p.children {
			p.children[i] = d.part(depth + 1)
			if d.err != nil {
				break
			}
		}
	}
	return p
}
