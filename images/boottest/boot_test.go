//go:build boottest

package boottest

import (
	"context"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/partition/gpt"

	"github.com/lambgate/lambgate/images/internal/builder"
	"github.com/lambgate/lambgate/images/internal/update"
)

const (
	ovmfCode = "/usr/share/OVMF/OVMF_CODE_4M.fd"
	ovmfVars = "/usr/share/OVMF/OVMF_VARS_4M.fd"
)

// TestVMKernelBootKeepsSpoolOverReboot boots the VM image's kernel and
// cmdline.txt directly, the fastest path. A message for a relay domain is
// accepted while the internal server defers it, the appliance reboots
// through gokrazy's /reboot (by kexec), and the message must then reach the
// internal server: the spool and the settings on /perm survived.
func TestVMKernelBootKeepsSpoolOverReboot(t *testing.T) {
	requireTools(t, "qemu-system-x86_64", "mtype", "mcopy")
	sink := newSink(t)
	sink.setDeferral(true)
	image, _ := buildImage(t, builder.TargetVM, "kernel-boot")
	kernel := extractBootFile(t, image, "vmlinuz")
	cmdline := strings.TrimSpace(bootFile(t, image, "cmdline.txt"))

	v := startVM(t, "qemu-system-x86_64", "virtio-net-pci", sink.port,
		"-kernel", kernel, "-append", cmdline,
		"-drive", "file="+image+",format=raw,if=virtio")
	banner := v.waitBanner(t, "220 lambgate-test ")
	t.Logf("first boot answered after %.1fs: %s", time.Since(v.started).Seconds(), banner)

	if err := v.sendMail("alice@sender.test", "bob@example.test", "queued-before-reboot"); err != nil {
		t.Fatalf("send to the relay domain example.test: %v", err)
	}
	err := v.sendMail("alice@sender.test", "eve@elsewhere.test", "open-relay-probe")
	if err == nil || !strings.Contains(err.Error(), "550") {
		t.Errorf("send to elsewhere.test = %v, want 550: the appliance must not relay other domains", err)
	}

	c := &update.Client{BaseURL: v.baseURL(), Password: testPassword}
	if err := c.Reboot(context.Background(), 5*time.Second, true); err != nil {
		t.Fatalf("reboot: %v", err)
	}
	rebooted := time.Now()
	sink.setDeferral(false)
	banner = v.waitBanner(t, "220 lambgate-test ")
	t.Logf("second boot answered %.1fs after the reboot request: %s", time.Since(rebooted).Seconds(), banner)
	sink.waitMessage(t, "Subject: queued-before-reboot")

	if err := v.sendMail("alice@sender.test", "bob@example.test", "relayed-after-reboot"); err != nil {
		t.Fatalf("send after the reboot: %v", err)
	}
	sink.waitMessage(t, "Subject: relayed-after-reboot")
}

// TestVMUEFIBootUpdatesRoot boots the VM image through OVMF and
// systemd-boot and spools a message. It pushes a root file system from a
// second build through gokrazy's update endpoints and resets through the
// firmware. The appliance must run the new build from root B and still
// deliver the spooled message.
func TestVMUEFIBootUpdatesRoot(t *testing.T) {
	requireTools(t, "qemu-system-x86_64", "mtype")
	requireFiles(t, ovmfCode, ovmfVars)
	sink := newSink(t)
	sink.setDeferral(true)
	image, _ := buildImage(t, builder.TargetVM, "uefi-first")
	_, newRoot := buildImage(t, builder.TargetVM, "uefi-second")

	vars := filepath.Join(t.TempDir(), "OVMF_VARS.fd")
	data, err := os.ReadFile(ovmfVars)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(vars, data, 0o644); err != nil {
		t.Fatal(err)
	}

	v := startVM(t, "qemu-system-x86_64", "virtio-net-pci", sink.port,
		"-drive", "if=pflash,format=raw,readonly=on,file="+ovmfCode,
		"-drive", "if=pflash,format=raw,file="+vars,
		"-drive", "file="+image+",format=raw,if=virtio")
	banner := v.waitBanner(t, "220 lambgate-test ")
	t.Logf("UEFI boot answered after %.1fs: %s", time.Since(v.started).Seconds(), banner)
	ctx := context.Background()
	c := &update.Client{BaseURL: v.baseURL(), Password: testPassword}
	waitBuild(t, c, "uefi-first")
	if err := v.sendMail("alice@sender.test", "bob@example.test", "queued-before-update"); err != nil {
		t.Fatalf("send to the relay domain example.test: %v", err)
	}

	if id, err := update.RootBuildID(newRoot); err != nil || id != "uefi-second" {
		t.Fatalf("build ID of the new root = %q, %v; want uefi-second", id, err)
	}
	if err := c.PushRoot(ctx, newRoot); err != nil {
		t.Fatalf("push root: %v", err)
	}
	if err := c.Switch(ctx); err != nil {
		t.Fatalf("switch root: %v", err)
	}
	// Without kexec the reset goes through OVMF and systemd-boot, which
	// must read the rewritten loader entry to find root B.
	if err := c.Reboot(ctx, 5*time.Second, false); err != nil {
		t.Fatalf("reboot: %v", err)
	}
	rebooted := time.Now()
	sink.setDeferral(false)
	waitBuild(t, c, "uefi-second")
	t.Logf("updated appliance served build uefi-second %.1fs after the reboot request",
		time.Since(rebooted).Seconds())
	sink.waitMessage(t, "Subject: queued-before-update")

	// The switch rewrote cmdline.txt and the systemd-boot entry in place.
	for _, name := range []string{"cmdline.txt", "loader/entries/gokrazy.conf"} {
		if got := bootFile(t, image, name); !strings.Contains(got, "/PARTNROFF=2 ") {
			t.Errorf("%s after the update = %q, want root on PARTNROFF=2 (root B)", name, got)
		}
	}
}

// TestVMBIOSBootSwitchesRoot boots the VM image through SeaBIOS and the MBR
// loader, switches to a new root and resets through the BIOS: the loader
// must read the rewritten cmdline.txt and start root B.
func TestVMBIOSBootSwitchesRoot(t *testing.T) {
	requireTools(t, "qemu-system-x86_64")
	sink := newSink(t)
	image, _ := buildImage(t, builder.TargetVM, "bios-first")
	_, newRoot := buildImage(t, builder.TargetVM, "bios-second")

	// Without pflash drives qemu's PC machine boots SeaBIOS, which runs
	// the MBR's code.
	v := startVM(t, "qemu-system-x86_64", "virtio-net-pci", sink.port,
		"-drive", "file="+image+",format=raw,if=virtio")
	banner := v.waitBanner(t, "220 lambgate-test ")
	t.Logf("BIOS boot answered after %.1fs: %s", time.Since(v.started).Seconds(), banner)

	ctx := context.Background()
	c := &update.Client{BaseURL: v.baseURL(), Password: testPassword}
	waitBuild(t, c, "bios-first")
	if err := c.PushRoot(ctx, newRoot); err != nil {
		t.Fatalf("push root: %v", err)
	}
	if err := c.Switch(ctx); err != nil {
		t.Fatalf("switch root: %v", err)
	}
	if err := c.Reboot(ctx, 5*time.Second, false); err != nil {
		t.Fatalf("reboot: %v", err)
	}
	rebooted := time.Now()
	waitBuild(t, c, "bios-second")
	t.Logf("BIOS reset reached build bios-second %.1fs after the reboot request", time.Since(rebooted).Seconds())
	if err := v.sendMail("alice@sender.test", "bob@example.test", "relayed-after-bios-switch"); err != nil {
		t.Fatalf("send after the switch: %v", err)
	}
	sink.waitMessage(t, "Subject: relayed-after-bios-switch")
}

// TestPiImageBootsUnderArm64Virt checks the Raspberry Pi image's boot
// files, then boots its root file system with kernel.arm64 on qemu's virt
// machine: the Pi's own kernel needs Pi hardware, but init, gateway and
// root are the ones a Pi runs.
func TestPiImageBootsUnderArm64Virt(t *testing.T) {
	requireTools(t, "qemu-system-aarch64", "mtype", "mdir")
	image, _ := buildImage(t, builder.TargetPi, "pi-virt")

	checkPartitionTable(t, image)
	listing, err := exec.Command("mdir", "-b", "-i", image+"@@4194304", "::/").Output()
	if err != nil {
		t.Fatalf("mdir: %v", err)
	}
	for _, want := range []string{"bootcode.bin", "start4.elf", "fixup4.dat", "config.txt", "cmdline.txt",
		"vmlinuz", "bcm2710-rpi-3-b.dtb", "bcm2711-rpi-4-b.dtb", "bcm2712-rpi-5-b.dtb", "overlays/"} {
		if !strings.Contains(string(listing), "::/"+want) {
			t.Errorf("boot partition lacks %s; it holds:\n%s", want, listing)
		}
	}
	if config := bootFile(t, image, "config.txt"); !strings.Contains(config, "enable_uart=1") {
		t.Errorf("config.txt lacks enable_uart=1:\n%s", config)
	}
	cmdline := strings.TrimSpace(bootFile(t, image, "cmdline.txt"))
	if !strings.Contains(cmdline, "/PARTNROFF=1 ") || !strings.Contains(cmdline, "init=/gokrazy/init") {
		t.Errorf("cmdline.txt = %q, want root on PARTNROFF=1 and init=/gokrazy/init", cmdline)
	}

	kernelDir := moduleDirOf(t, "github.com/gokrazy/kernel.arm64")
	// The virt machine's serial port is a PL011, ttyAMA0.
	virtCmdline := strings.ReplaceAll(cmdline, "console=ttyS0,115200", "console=ttyAMA0,115200")
	sink := newSink(t)
	v := startVM(t, "qemu-system-aarch64", "virtio-net-pci", sink.port,
		"-M", "virt", "-cpu", "cortex-a57",
		"-kernel", filepath.Join(kernelDir, "vmlinuz"), "-append", virtCmdline,
		"-drive", "file="+image+",format=raw,if=virtio")
	banner := v.waitBanner(t, "220 lambgate-test ")
	t.Logf("arm64 boot answered after %.1fs: %s", time.Since(v.started).Seconds(), banner)
	if err := v.sendMail("alice@sender.test", "bob@example.test", "relayed-by-arm64"); err != nil {
		t.Fatalf("send to the relay domain example.test: %v", err)
	}
	sink.waitMessage(t, "Subject: relayed-by-arm64")
}

func moduleDirOf(t *testing.T, module string) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", module).Output()
	if err != nil || strings.TrimSpace(string(out)) == "" {
		t.Fatalf("go list -m %s: %v: run go mod download %s", module, err, module)
	}
	return strings.TrimSpace(string(out))
}

// checkPartitionTable reads the GPT with go-diskfs and the hybrid MBR's
// first entry, which the Raspberry Pi boot ROM uses to find the boot FAT.
func checkPartitionTable(t *testing.T, image string) {
	t.Helper()
	f, err := os.Open(image)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	table, err := gpt.Read(file.New(f, true), 512, 512)
	if err != nil {
		t.Fatalf("read the GPT: %v", err)
	}
	wantStarts := []uint64{8192, 212992, 1236992, 2260992}
	if len(table.Partitions) != len(wantStarts) {
		t.Fatalf("GPT holds %d partitions, want %d", len(table.Partitions), len(wantStarts))
	}
	for i, p := range table.Partitions {
		if p.Start != wantStarts[i] {
			t.Errorf("partition %d starts at sector %d, want %d", i+1, p.Start, wantStarts[i])
		}
	}

	mbr := make([]byte, 512)
	if _, err := f.ReadAt(mbr, 0); err != nil {
		t.Fatal(err)
	}
	entry := mbr[446:462]
	if entry[0] != 0x80 || entry[4] != 0x0c {
		t.Errorf("MBR entry 1: status %#x type %#x, want an active FAT32 LBA (0x0c) entry", entry[0], entry[4])
	}
	if start := binary.LittleEndian.Uint32(entry[8:]); start != 8192 {
		t.Errorf("MBR entry 1 starts at sector %d, want 8192 (the boot FAT)", start)
	}
}

// waitBuild waits until gokrazy's status page shows buildID.
func waitBuild(t *testing.T, c *update.Client, buildID string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()
	if err := c.WaitBuild(ctx, buildID, time.Second); err != nil {
		t.Fatal(err)
	}
}
