package bounce_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/lambgate/lambgate/appliance/bounce"
	"github.com/lambgate/lambgate/appliance/envelope"
	"github.com/lambgate/lambgate/appliance/settings"
)

// The gateway builds both halves of the bounce role from the settings: the
// Bouncer for the queue's permanent failures, and the MXDeliverer for the
// queued DSNs of kind bounce.
func Example() {
	s := settings.Default()
	log := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
	cfg := bounce.ConfigFromSettings(s)

	// The real submit function spools, commits and enqueues the DSN.
	submit := func(_ context.Context, env *envelope.Envelope, msg []byte) error {
		fmt.Printf("spool DSN: kind=%s from=<%s> to=%s\n", env.Kind, env.From, env.Recipients[0].Address)
		return nil
	}
	bouncer, err := bounce.NewBouncer(cfg, submit, log)
	if err != nil {
		fmt.Println(err)
		return
	}
	if _, err := bounce.NewMXDeliverer(cfg, log); err != nil {
		fmt.Println(err)
		return
	}

	original := &envelope.Envelope{
		QueueID: "0123456789AB",
		Kind:    envelope.KindInbound,
		From:    "alice@example.org",
		SPF:     "softfail",
		Recipients: []envelope.Recipient{
			{Address: "nobody@example.test", State: envelope.StateBounce},
		},
	}
	body := bytes.NewReader([]byte("Subject: hi\r\n\r\nbody\r\n"))

	// A softfail may be a forged sender, so no DSN is sent.
	bouncer.Bounce(context.Background(), original, body, original.Recipients)

	original.SPF = "pass"
	bouncer.Bounce(context.Background(), original, body, original.Recipients)

	// Output:
	// level=INFO msg="bounce suppressed" queue_id=0123456789AB from=alice@example.org reason=spf_not_pass detail="spf softfail"
	// spool DSN: kind=bounce from=<> to=alice@example.org
	// level=INFO msg="bounce queued" queue_id=0123456789AB from=alice@example.org rcpt=nobody@example.test status=5.1.1
}
