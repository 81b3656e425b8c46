package host

import "github.com/lambgate/lambgate/appliance/filter"

// ABIVersion is the plugin ABI this host implements. A module declares the
// version it was built for by exporting a function named ABIMarker.
const ABIVersion = 1

// Names a module exports or imports under ABI v1. sdk/ABI.md documents each.
const (
	ABIMarker        = "lambgate_abi_version_1"
	abiMarkerPrefix  = "lambgate_abi_version_"
	hostModuleName   = "lambgate"
	wasiModuleName   = "wasi_snapshot_preview1"
	envModuleName    = "env" // AssemblyScript's abort
	initializeExport = "_initialize"
	memoryExport     = "memory"
)

// Phase is one callback of the SMTP transaction, in the order the host
// calls them.
type Phase int

// Phases of ABI v1. Headers, Body and Done all run inside filter.Chain.Data.
const (
	PhaseConnect Phase = iota
	PhaseHelo
	PhaseMail
	PhaseRcpt
	PhaseHeaders
	PhaseBody
	PhaseDone
	numPhases
)

var phaseNames = [numPhases]string{"connect", "helo", "mail", "rcpt", "headers", "body", "done"}

func (p Phase) String() string {
	if p < 0 || p >= numPhases {
		return "invalid"
	}
	return phaseNames[p]
}

// Export returns the name of the callback a module exports for the phase.
func (p Phase) Export() string { return "lambgate_on_" + p.String() }

// ParsePhase returns the phase named s ("connect" ... "done").
func ParsePhase(s string) (Phase, bool) {
	for i, n := range phaseNames {
		if n == s {
			return Phase(i), true
		}
	}
	return 0, false
}

// Status codes that host calls return to the guest. Calls that fill a guest
// buffer return the value's full length (zero or more) on success instead.
// A pointer outside guest memory, or a capability the manifest does not
// grant, never returns a status: the host aborts the call (see sdk/ABI.md).
const (
	statusOK           = 0
	statusNotFound     = -1
	statusBadArgument  = -2
	statusWrongPhase   = -3
	statusLimit        = -4
	statusTempFailure  = -5
	statusNotSupported = -6
)

// Property ids for get_property.
const (
	propClientAddr = 1
	propClientPort = 2
	propHELO       = 3
	propMailFrom   = 4
	propRcpt       = 5 // the recipient of the current rcpt phase
	propQueueID    = 6
	propTLS        = 7 // "1" or "0"
	propSPF        = 8 // the gateway's SPF result, "" when not checked
	propPhase      = 9
	propPlugin     = 10 // the plugin's own manifest name
	propMIMEError  = 11 // why the MIME walk stopped early, "" when it completed
)

// Targets for search, regex_match and hash.
const (
	targetGuest   = 0 // bytes in guest memory at (ptr, len)
	targetHeaders = 1 // the raw header block, CRLF line ends, folded as received
	targetBody    = 2 // the raw body after the blank line, not decoded
	targetHeader  = 3 // each unfolded value of the header named by (ptr, len)
)

// Fields for get_part.
const (
	partContentType = 1 // lower-case media type, "text/plain" when absent
	partFileName    = 2 // decoded file name from Content-Disposition or Content-Type
	partDisposition = 3 // "attachment", "inline" or ""
	partPath        = 4 // position such as "1.2.1"
)

// Hash algorithms for hash.
const (
	hashSHA256 = 1
	hashSHA1   = 2
	hashMD5    = 3
)

// DNS record types for dns_lookup, numbered as in the DNS.
const (
	dnsA    = 1
	dnsMX   = 15
	dnsTXT  = 16
	dnsAAAA = 28
)

// Limits on what a plugin may ask for in one message; a call past a limit
// returns statusLimit.
const (
	maxHeadersPerCall = 16   // add_header calls per plugin call
	maxTagsPerCall    = 16   // add_tag calls per plugin call
	maxHeaderLine     = 998  // RFC 5322 line length limit, name and value
	maxReplyText      = 400  // RFC 5321 allows 512 octets per reply line
	maxTagLen         = 64   // bytes
	maxRegexes        = 256  // compiled patterns per plugin
	maxRegexLen       = 4096 // bytes of one pattern
	maxKVKey          = 256
	maxKVValue        = 4096
)

// actionFromGuest maps a callback's return value to an action.
func actionFromGuest(v uint32) (filter.Action, bool) {
	a := filter.Action(int32(v))
	if a < filter.Continue || a > filter.Bounce {
		return 0, false
	}
	return a, true
}
