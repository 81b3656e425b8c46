package relay_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/lambgate/lambgate/appliance/envelope"
	"github.com/lambgate/lambgate/appliance/relay"
)

// The gateway builds a Relay from the [internal] settings and hands it to the
// queue as the Deliverer of inbound mail.
func ExampleNew() {
	log := slog.New(slog.NewTextHandler(os.Stdout, nil))
	r, err := relay.New(relay.Config{
		Server:        "mail.example.test:25",
		HELO:          "lambgate.example.test",
		TLS:           true,
		TLSVerify:     true,
		SourceAddress: "192.0.2.10",
		Timeout:       5 * time.Minute,
	}, log)
	if err != nil {
		log.Error("relay configuration invalid", "reason", err.Error())
		return
	}
	defer r.Close()

	env := &envelope.Envelope{
		QueueID:    "0EXAMPLEQID1",
		From:       "sender@example.org",
		Recipients: []envelope.Recipient{{Address: "user@example.test", State: envelope.StatePending}},
	}
	results, err := r.Deliver(context.Background(), env, bytes.NewReader([]byte("Subject: hi\r\n\r\nhello\r\n")))
	if err != nil {
		log.Warn("delivery deferred", "queue_id", env.QueueID, "reason", err.Error())
		return
	}
	for _, res := range results {
		log.Info("relay result", "rcpt", res.Recipient, "delivered", res.Delivered, "reason", res.Text)
	}
}
