//go:build boottest

package boottest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lambgate/lambgate/images/internal/builder"
	"github.com/lambgate/lambgate/images/internal/update"
)

const (
	ovmfCode = "/usr/share/OVMF/OVMF_CODE_4M.fd"
	ovmfVars = "/usr/share/OVMF/OVMF_VARS_4M.fd"
)

// TestVMKernelBootKeepsPermOverReboot boots the VM image's kernel and
// cmdline.txt directly, the fastest path, then reboots through gokrazy's
// /reboot (by kexec) and checks that /perm kept the boot counter and the
// settings.
func TestVMKernelBootKeepsPermOverReboot(t *testing.T) {
	requireTools(t, "qemu-system-x86_64", "mtype", "mcopy")
	image, _ := buildImage(t, builder.TargetVM, "kernel-boot")
	kernel := extractBootFile(t, image, "vmlinuz")
	cmdline := strings.TrimSpace(bootFile(t, image, "cmdline.txt"))

	v := startVM(t, "qemu-system-x86_64", "virtio-net-pci",
		"-kernel", kernel, "-append", cmdline,
		"-drive", "file="+image+",format=raw,if=virtio")
	banner := v.waitBanner(t, "boots=1")
	t.Logf("first boot answered after %.1fs: %s", time.Since(v.started).Seconds(), banner)
	if !strings.Contains(banner, "settings=true") {
		t.Errorf("banner %q: the baked-in settings were not copied to /perm/lambgate", banner)
	}

	c := &update.Client{BaseURL: v.baseURL(), Password: testPassword}
	if err := c.Reboot(context.Background(), 5*time.Second, true); err != nil {
		t.Fatalf("reboot: %v", err)
	}
	rebooted := time.Now()
	banner = v.waitBanner(t, "boots=2")
	t.Logf("second boot answered %.1fs after the reboot request: %s", time.Since(rebooted).Seconds(), banner)
	if !strings.Contains(banner, "settings=true") {
		t.Errorf("banner %q: the settings file did not survive the reboot", banner)
	}
}

// TestVMUEFIBootUpdatesRoot boots the VM image through OVMF and
// systemd-boot, pushes a root file system from a second build through
// gokrazy's update endpoints, and checks that the appliance comes back
// from root B with the new build and the same /perm.
func TestVMUEFIBootUpdatesRoot(t *testing.T) {
	requireTools(t, "qemu-system-x86_64")
	requireFiles(t, ovmfCode, ovmfVars)
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

	v := startVM(t, "qemu-system-x86_64", "virtio-net-pci",
		"-drive", "if=pflash,format=raw,readonly=on,file="+ovmfCode,
		"-drive", "if=pflash,format=raw,file="+vars,
		"-drive", "file="+image+",format=raw,if=virtio")
	banner := v.waitBanner(t, "boots=1 settings=true build=uefi-first")
	t.Logf("UEFI boot answered after %.1fs: %s", time.Since(v.started).Seconds(), banner)

	ctx := context.Background()
	c := &update.Client{BaseURL: v.baseURL(), Password: testPassword}
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
	banner = v.waitBanner(t, "build=uefi-second")
	t.Logf("updated appliance answered %.1fs after the reboot request: %s", time.Since(rebooted).Seconds(), banner)
	if !strings.Contains(banner, "boots=2") {
		t.Errorf("banner %q: want boots=2, /perm was not kept across the update", banner)
	}

	// The switch rewrote cmdline.txt and the systemd-boot entry in place.
	for _, name := range []string{"cmdline.txt", "loader/entries/gokrazy.conf"} {
		if got := bootFile(t, image, name); !strings.Contains(got, "/PARTNROFF=2 ") {
			t.Errorf("%s after the update = %q, want root on PARTNROFF=2 (root B)", name, got)
		}
	}
}

// TestPiImageBootsUnderArm64Virt checks the Raspberry Pi image's boot
// files, then boots its root file system with kernel.arm64 on qemu's virt
// machine: the Pi's own kernel needs Pi hardware, but init, gateway and
// root are the ones a Pi runs.
func TestPiImageBootsUnderArm64Virt(t *testing.T) {
	requireTools(t, "qemu-system-aarch64", "mtype", "mdir")
	image, _ := buildImage(t, builder.TargetPi, "pi-virt")

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
	v := startVM(t, "qemu-system-aarch64", "virtio-net-pci",
		"-M", "virt", "-cpu", "cortex-a57",
		"-kernel", filepath.Join(kernelDir, "vmlinuz"), "-append", virtCmdline,
		"-drive", "file="+image+",format=raw,if=virtio")
	banner := v.waitBanner(t, "boots=1 settings=true build=pi-virt")
	t.Logf("arm64 boot answered after %.1fs: %s", time.Since(v.started).Seconds(), banner)
}

func moduleDirOf(t *testing.T, module string) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", module).Output()
	if err != nil || strings.TrimSpace(string(out)) == "" {
		t.Fatalf("go list -m %s: %v: run go mod download %s", module, err, module)
	}
	return strings.TrimSpace(string(out))
}
