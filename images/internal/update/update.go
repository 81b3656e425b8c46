// Package update pushes a new root file system to a running appliance
// through gokrazy's HTTP update endpoints: PUT /update/root writes the
// inactive root partition, POST /update/switch points cmdline.txt (and the
// systemd-boot entry) at it, POST /reboot restarts into it. /perm is never
// written, so settings and spool survive. The package never touches the
// boot partition's other files or the partition table.
package update

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/squashfs"
)

// Client talks to one appliance's gokrazy web interface.
type Client struct {
	// BaseURL is http://HOST[:PORT] of gokrazy's status page (port 80 on
	// an appliance).
	BaseURL string
	// Password is the content of the image's gokr-pw.txt. The user name is
	// always "gokrazy".
	Password string
	// HTTP defaults to a client with a 5-minute timeout.
	HTTP *http.Client
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return &http.Client{Timeout: 5 * time.Minute}
}

// PushRoot streams the squashfs at path to the inactive root partition and
// checks the SHA-256 that the appliance computed while writing it.
func (c *Client) PushRoot(ctx context.Context, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	want := hex.EncodeToString(h.Sum(nil))
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}

	got, err := c.do(ctx, http.MethodPut, "/update/root", f)
	if err != nil {
		return err
	}
	if strings.TrimSpace(got) != want {
		return fmt.Errorf("appliance wrote root with SHA-256 %q, want %s: the transfer was corrupted, push again",
			strings.TrimSpace(got), want)
	}
	return nil
}

// Switch makes the partition written by PushRoot the root of the next boot.
func (c *Client) Switch(ctx context.Context) error {
	_, err := c.do(ctx, http.MethodPost, "/update/switch", nil)
	return err
}

// Reboot stops the supervised programs (waiting at most waitPerSignal for
// each of SIGTERM and SIGKILL), unmounts /perm and restarts the appliance.
// With kexec, gokrazy's amd64 runtime starts vmlinuz with cmdline.txt
// directly and skips firmware and boot loader. Without it, the machine
// resets and boots through its firmware, as after a power cut.
func (c *Client) Reboot(ctx context.Context, waitPerSignal time.Duration, kexec bool) error {
	path := "/reboot?wait_per_signal=" + waitPerSignal.String()
	if !kexec {
		path += "&kexec=off"
	}
	_, err := c.do(ctx, http.MethodPost, path, nil)
	return err
}

// WaitBuild polls gokrazy's status page until it shows buildID, the init's
// build timestamp, which the image builder sets to the build ID.
func (c *Client) WaitBuild(ctx context.Context, buildID string, every time.Duration) error {
	for {
		page, err := c.do(ctx, http.MethodGet, "/", nil)
		if err == nil && strings.Contains(page, buildID) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("appliance did not come back with build %s: %w", buildID, ctx.Err())
		case <-time.After(every):
		}
	}
}

// RootBuildID reads /etc/lambgate/build-id from a root squashfs.
func RootBuildID(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	fsys, err := squashfs.Read(file.New(f, true), st.Size(), 0, 0)
	if err != nil {
		return "", fmt.Errorf("%s is not a squashfs root: %w", path, err)
	}
	b, err := fsys.ReadFile("etc/lambgate/build-id")
	if err != nil {
		return "", fmt.Errorf("%s has no etc/lambgate/build-id: build it with lambgate-image -root-o: %w", path, err)
	}
	return strings.TrimSpace(string(b)), nil
}

func (c *Client) do(ctx context.Context, method, path string, body io.Reader) (string, error) {
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.BaseURL, "/")+path, body)
	if err != nil {
		return "", err
	}
	req.SetBasicAuth("gokrazy", c.Password)
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("%s %s: read response: %w", method, path, err)
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		return "", fmt.Errorf("%s %s: 401 Unauthorized: use the password file the image was built with", method, path)
	case resp.StatusCode != http.StatusOK:
		return "", fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(b)))
	}
	return string(b), nil
}
