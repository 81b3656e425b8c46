package queue_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/lambgate/lambgate/appliance/envelope"
	"github.com/lambgate/lambgate/appliance/queue"
	"github.com/lambgate/lambgate/appliance/spool"
)

// printer is a Deliverer that prints instead of relaying.
type printer struct{ done chan struct{} }

func (p printer) Deliver(_ context.Context, env *envelope.Envelope, body envelope.Body) ([]envelope.Result, error) {
	var results []envelope.Result
	for _, r := range env.Pending() {
		fmt.Printf("deliver %d bytes to %s\n", body.Size(), r.Address)
		results = append(results, envelope.Result{Recipient: r.Address, Code: 250, Delivered: true})
	}
	close(p.done)
	return results, nil
}

// The gateway's path for one message: spool and commit it, then enqueue it.
func Example() {
	dir, _ := os.MkdirTemp("", "lambgate-spool")
	defer os.RemoveAll(dir)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	sp, err := spool.Open(dir, log)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sp.Close()

	done := make(chan struct{})
	deliverers := map[envelope.Kind]envelope.Deliverer{envelope.KindInbound: printer{done}}
	q := queue.New(sp, deliverers, nil, queue.Config{}, log)
	if err := q.Start(context.Background()); err != nil {
		fmt.Println(err)
		return
	}

	env := &envelope.Envelope{
		Kind:       envelope.KindInbound,
		From:       "sender@example.org",
		Recipients: []envelope.Recipient{{Address: "user@example.test", State: envelope.StatePending}},
		Received:   time.Now(),
	}
	w, _ := sp.Create(env)
	io.WriteString(w, "Subject: hello\r\n\r\nHello.\r\n")
	if err := w.Commit(context.Background(), spool.AreaQueue); err != nil {
		fmt.Println(err) // smtpd would reply 451, or 452 for spool.ErrNoSpace
		return
	}
	q.Enqueue(env)

	<-done
	q.Stop(context.Background())
	// Output: deliver 26 bytes to user@example.test
}
