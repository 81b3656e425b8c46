package host

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"
	"golang.org/x/time/rate"

	"github.com/lambgate/lambgate/appliance/filter"
)

// Plugin is one loaded module with its manifest, its own wazero runtime
// (the memory cap is a runtime setting) and its pool of instances.
type Plugin struct {
	man         *Manifest
	file        string
	fingerprint string

	rt       wazero.Runtime
	compiled wazero.CompiledModule

	// idle holds instances ready for a call; slots bounds live instances,
	// so that a burst of sessions waits instead of exhausting memory.
	idle  chan *instance
	slots chan struct{}

	regexMu  sync.RWMutex
	regexes  []*regexp.Regexp
	regexIdx map[string]int

	kv       *kvStore
	resolver Resolver
	watchdog *watchdog
	calls    callSlots
	now      func() time.Time
	log      *slog.Logger
	logLimit *rate.Limiter
	stderr   io.Writer
	stats    pluginStats
}

// instance is one instantiated module. It serves one call at a time: a Go
// guest entered twice at once traps or hangs.
type instance struct {
	mod   api.Module
	fns   [numPhases]api.Function
	stack [1]uint64
	watch watch
}

type loadConfig struct {
	cache        wazero.CompilationCache
	resolver     Resolver
	now          func() time.Time
	log          *slog.Logger
	kv           *kvStore
	watchdog     *watchdog
	calls        callSlots
	maxInstances int
}

// initTimeLimit bounds _initialize, which for a Go guest runs the whole
// runtime start-up (1-3 ms measured with wazero v1.12.0 on amd64, more
// under load), so the per-call limit would be too tight for it.
func initTimeLimit(m *Manifest) time.Duration { return max(10*m.timeLimit, 5*time.Second) }

// loadPlugin compiles and validates a module against its manifest and
// creates its first instance, so that a module that cannot start is
// rejected at load time rather than on the first message.
func loadPlugin(ctx context.Context, cfg loadConfig, file string, man *Manifest, wasm []byte) (_ *Plugin, err error) {
	rtCfg := wazero.NewRuntimeConfigCompiler().
		WithCloseOnContextDone(true).
		WithMemoryLimitPages(uint32(man.MemoryLimitMB) * 16).
		WithCompilationCache(cfg.cache)
	rt := wazero.NewRuntimeWithConfig(ctx, rtCfg)
	defer func() {
		if err != nil {
			rt.Close(ctx)
		}
	}()

	compiled, err := rt.CompileModule(ctx, wasm)
	if err != nil {
		return nil, fmt.Errorf("invalid module: %w", err)
	}
	usesWASI, err := checkModule(compiled, man)
	if err != nil {
		return nil, err
	}
	if usesWASI {
		if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
			return nil, fmt.Errorf("instantiate WASI: %w", err)
		}
	}
	if err := instantiateHostModules(ctx, rt); err != nil {
		return nil, fmt.Errorf("instantiate host module: %w", err)
	}

	log := cfg.log.With("plugin", man.Name)
	p := &Plugin{
		man:      man,
		file:     file,
		rt:       rt,
		compiled: compiled,
		idle:     make(chan *instance, cfg.maxInstances),
		slots:    make(chan struct{}, cfg.maxInstances),
		regexIdx: make(map[string]int),
		kv:       cfg.kv,
		resolver: cfg.resolver,
		watchdog: cfg.watchdog,
		calls:    cfg.calls,
		now:      cfg.now,
		log:      log,
		logLimit: rate.NewLimiter(10, 50),
	}
	p.stderr = &guestOutput{p: p}

	inst, err := p.newInstance(ctx)
	if err != nil {
		return nil, err
	}
	p.slots <- struct{}{}
	p.release(inst)
	return p, nil
}

// checkModule validates a compiled module's exports and imports against
// ABI v1 and the manifest, and reports whether it imports WASI.
func checkModule(cm wazero.CompiledModule, man *Manifest) (usesWASI bool, err error) {
	exports := cm.ExportedFunctions()

	var versions []string
	for name := range exports {
		if v, ok := strings.CutPrefix(name, abiMarkerPrefix); ok {
			versions = append(versions, v)
		}
	}
	sort.Strings(versions)
	switch {
	case len(versions) == 0:
		return false, fmt.Errorf("missing export %s: build the plugin with a Lambgate SDK, which exports it", ABIMarker)
	case len(versions) > 1 || versions[0] != "1":
		return false, fmt.Errorf("module is built for ABI version %s, but this host implements version %d: rebuild it with a current SDK",
			strings.Join(versions, ","), ABIVersion)
	}

	if _, ok := cm.ExportedMemories()[memoryExport]; !ok {
		return false, errors.New("missing export \"memory\": the host passes all data through the module's exported memory")
	}

	for _, ph := range man.phaseList() {
		def, ok := exports[ph.Export()]
		if !ok {
			return false, fmt.Errorf("manifest lists phase %q but the module does not export %s", ph, ph.Export())
		}
		if len(def.ParamTypes()) != 0 || len(def.ResultTypes()) != 1 || def.ResultTypes()[0] != api.ValueTypeI32 {
			return false, fmt.Errorf("export %s has the wrong signature: want () -> i32", ph.Export())
		}
	}

	known := make(map[string]bool, len(hostFuncs))
	for _, hf := range hostFuncs {
		known[hf.name] = true
	}
	for _, imp := range cm.ImportedFunctions() {
		mod, name, _ := imp.Import()
		switch {
		case mod == hostModuleName && known[name]:
		case mod == wasiModuleName:
			usesWASI = true
		case mod == envModuleName && name == "abort":
		default:
			return false, fmt.Errorf("module imports %s.%s, which ABI v%d does not provide", mod, name, ABIVersion)
		}
	}
	if len(cm.ImportedMemories()) > 0 {
		return false, errors.New("module imports a memory: it must define and export its own")
	}
	return usesWASI, nil
}

func (p *Plugin) newInstance(ctx context.Context) (*instance, error) {
	cfg := wazero.NewModuleConfig().
		WithName("").         // several instances of one module
		WithStartFunctions(). // reactor: _initialize is called below
		WithRandSource(rand.Reader).
		WithStdout(p.stderr).
		WithStderr(p.stderr)
	mod, err := p.rt.InstantiateModule(ctx, p.compiled, cfg)
	if err != nil {
		return nil, fmt.Errorf("instantiate: %w", err)
	}

	if init := mod.ExportedFunction(initializeExport); init != nil {
		// _initialize runs rarely, so a context deadline is cheap enough
		// here. It holds a call slot like any guest code.
		if err := p.calls.acquire(ctx); err != nil {
			mod.Close(ctx)
			return nil, fmt.Errorf("wait for a call slot to run _initialize: %w", err)
		}
		c := &call{plugin: p, phase: phaseInit, holdsSlot: true, deadline: time.Now().Add(initTimeLimit(p.man))}
		ictx, cancel := context.WithDeadline(ctx, c.deadline)
		_, err := init.Call(context.WithValue(ictx, callKey{}, c))
		cancel()
		c.releaseSlot()
		if err != nil {
			mod.Close(ctx)
			return nil, fmt.Errorf("_initialize failed: %s", firstLine(err))
		}
	}

	inst := &instance{mod: mod}
	for ph := range numPhases {
		if p.man.phases[ph] {
			inst.fns[ph] = mod.ExportedFunction(ph.Export())
		}
	}
	p.stats.instances.Add(1)
	return inst, nil
}

// acquire takes an idle instance or creates one, waiting for a free slot
// when the plugin already runs its maximum number of instances.
func (p *Plugin) acquire(ctx context.Context) (*instance, error) {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case inst := <-p.idle:
		return inst, nil
	default:
	}
	inst, err := p.newInstance(context.WithoutCancel(ctx))
	if err != nil {
		<-p.slots
		return nil, err
	}
	return inst, nil
}

func (p *Plugin) release(inst *instance) {
	p.idle <- inst
	<-p.slots
}

// discard closes an instance after a failed call: a trap or a stop at the
// time limit leaves its memory in an unknown state.
func (p *Plugin) discard(inst *instance) {
	inst.mod.Close(context.Background())
	p.stats.discarded.Add(1)
	<-p.slots
}

// run calls the plugin's callback for c.phase in a pooled instance under
// the manifest's time limit. The instance is taken before the call slot,
// always in that order, so that no call holds a slot while it waits for
// an instance that a call waiting for a slot holds.
func (p *Plugin) run(ctx context.Context, c *call) (filter.Action, *Failure) {
	inst, err := p.acquire(ctx)
	if err != nil {
		return 0, &Failure{Kind: FailNoInstance, Detail: firstLine(err)}
	}
	if err := p.calls.acquire(ctx); err != nil {
		p.release(inst)
		return 0, &Failure{Kind: FailCanceled, Detail: "the session ended while the call waited for a call slot"}
	}
	c.holdsSlot = true

	// wazero's per-call goroutine watches ctx for the end of the session.
	// The time limit comes from the watchdog, which closes the module.
	c.deadline = p.watchdog.start(&inst.watch, inst.mod, p.man.timeLimit)
	inst.stack[0] = 0
	err = inst.fns[c.phase].CallWithStack(context.WithValue(ctx, callKey{}, c), inst.stack[:])
	expired := p.watchdog.stop(&inst.watch)
	if err != nil || expired {
		f := p.classify(ctx, err, c, inst, expired)
		p.discard(inst)
		if err != nil && strings.Contains(err.Error(), "stack overflow") {
			// The discarded instance holds a stack of about 84 MB. Collecting
			// it before the slot is free, at the cost of one GC cycle per
			// overflow, keeps the next recursing call from adding its stack
			// on top.
			runtime.GC()
		}
		c.releaseSlot()
		return 0, f
	}
	c.releaseSlot()

	res := api.DecodeU32(inst.stack[0])
	p.release(inst)
	action, ok := actionFromGuest(res)
	if !ok {
		return 0, &Failure{Kind: FailInvalidAction, Detail: fmt.Sprintf("callback returned %d, not an action 0-6", int32(res))}
	}
	return action, nil
}

// classify names the failure of a call that returned err or that the
// watchdog stopped (expired). A call stopped at its limit may still have
// returned, in the moment before its result was read.
func (p *Plugin) classify(ctx context.Context, err error, c *call, inst *instance, expired bool) *Failure {
	var exit *sys.ExitError
	switch {
	case c.faultMsg != "":
		return &Failure{Kind: FailABI, Detail: c.faultMsg}
	case expired && err != nil && !errors.As(err, &exit):
		// A recursing call is not stopped by the close and fails at
		// wazero's stack ceiling, after its limit.
		return &Failure{Kind: FailTimeLimit, Detail: fmt.Sprintf("ran past the time limit of %s: %s", p.man.timeLimit, firstLine(err))}
	case expired:
		return &Failure{Kind: FailTimeLimit, Detail: fmt.Sprintf("stopped at the time limit of %s", p.man.timeLimit)}
	case errors.As(err, &exit) && (exit.ExitCode() == sys.ExitCodeContextCanceled || exit.ExitCode() == sys.ExitCodeDeadlineExceeded):
		return &Failure{Kind: FailCanceled, Detail: "the session ended during the call"}
	}
	// NOTE: wazero reports a failed memory.grow to the guest as -1 and
	// never to the host. A trap therefore counts as memory_limit when
	// memory is within an eighth of the cap, because allocators grow in
	// chunks (Go's runtime in multi-MiB steps) and give up below the cap.
	limit := uint64(p.man.MemoryLimitMB) << 20
	if mem := inst.mod.Memory(); mem != nil && uint64(mem.Size())+limit/8 >= limit {
		return &Failure{Kind: FailMemoryLimit, Detail: fmt.Sprintf("trapped with memory at the cap of %d MiB: %s", p.man.MemoryLimitMB, firstLine(err))}
	}
	return &Failure{Kind: FailTrap, Detail: firstLine(err)}
}

func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

func (p *Plugin) compileRegex(pat string) (int, int) {
	p.regexMu.Lock()
	defer p.regexMu.Unlock()
	if h, ok := p.regexIdx[pat]; ok {
		return h, statusOK
	}
	if len(p.regexes) >= maxRegexes {
		return 0, statusLimit
	}
	re, err := regexp.Compile(pat)
	if err != nil {
		return 0, statusBadArgument
	}
	p.regexes = append(p.regexes, re)
	p.regexIdx[pat] = len(p.regexes) - 1
	return len(p.regexes) - 1, statusOK
}

func (p *Plugin) regex(h int32) *regexp.Regexp {
	p.regexMu.RLock()
	defer p.regexMu.RUnlock()
	if h < 0 || int(h) >= len(p.regexes) {
		return nil
	}
	return p.regexes[h]
}

// close releases the runtime and every instance; in-flight calls must have
// ended.
func (p *Plugin) close(ctx context.Context) {
	if err := p.rt.Close(ctx); err != nil {
		p.log.Warn("close plugin runtime", "reason", err)
	}
}

// guestOutput sends a guest's stdout and stderr (Go panic text) to the
// log, one record per write, rate-limited with the plugin's log calls.
type guestOutput struct{ p *Plugin }

func (g *guestOutput) Write(b []byte) (int, error) {
	if g.p.logLimit.Allow() {
		g.p.log.Warn("plugin output", "output", cleanText(b, 2000))
	} else {
		g.p.stats.logsDropped.Add(1)
	}
	return len(b), nil
}
