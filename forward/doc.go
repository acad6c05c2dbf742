// Package forward is everything that sends mail onward.
//
// This package is the forwarding stage of the delivery path (Stage): each
// local recipient's forwarding rules, loop and hop checks, and the copies
// it adds for local targets or the outbound queue. Beneath it:
//
//	forward/srs    Sender Rewriting Scheme for forwarded mail and its bounces
//	forward/queue  the outbound queue runner: MX lookup, the SMTP client with
//	               opportunistic STARTTLS or a smart host, DKIM signing,
//	               retries with backoff and delivery status notifications
package forward
