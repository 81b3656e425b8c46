// Package bounce owns every message the appliance originates. It builds
// RFC 3464 delivery status notifications (DSNs) for failed recipients and
// decides through its backscatter safeguards whether a DSN may be sent at
// all. It delivers queued DSNs to the original sender's MX from the bounce
// role's source address with the bounce HELO name.
//
// It must never send a DSN to the null sender, in reply to a DSN or an
// auto-reply, or (when configured) to a sender whose SPF did not pass, and it
// must never send from any address other than the bounce source address: a
// failed bind is an error, not a reason to let the kernel pick another
// address. It never includes the body of the original message, which is
// likely spam. Retry scheduling and expiry of queued DSNs belong to the
// queue package.
package bounce
