package host

import (
	"context"
	"strconv"

	"github.com/tetratelabs/wazero/api"
)

// Host calls that copy transaction data into guest buffers. Each returns
// the value's full length, or a negative status.

func hGetProperty(_ context.Context, c *call, mod api.Module, stack []uint64) {
	id, buf, capacity := int32(stack[0]), u32(stack[1]), u32(stack[2])

	var v string
	switch id {
	case propPlugin:
		v = c.plugin.man.Name
	case propPhase:
		if c.phase == phaseInit {
			v = "init"
		} else {
			v = c.phase.String()
		}
	case propClientAddr, propClientPort, propHELO, propTLS, propSPF:
		if c.conn == nil {
			stack[0] = encI32(statusWrongPhase)
			return
		}
		switch id {
		case propClientAddr:
			if c.conn.ClientIP.IsValid() {
				v = c.conn.ClientIP.Unmap().String()
			}
		case propClientPort:
			v = strconv.Itoa(int(c.conn.ClientPort))
		case propHELO:
			if c.phase == PhaseConnect {
				stack[0] = encI32(statusWrongPhase)
				return
			}
			v = c.conn.HELO
		case propTLS:
			v = "0"
			if c.conn.TLS {
				v = "1"
			}
		case propSPF:
			v = c.conn.SPF
		}
	case propMailFrom, propQueueID:
		if c.txn == nil {
			stack[0] = encI32(statusWrongPhase)
			return
		}
		v = c.txn.From
		if id == propQueueID {
			v = c.txn.QueueID
		}
	case propMIMEError:
		if !c.bodyAllowed() {
			stack[0] = encI32(statusWrongPhase)
			return
		}
		c.msg.mimeParts()
		if c.msg.mimeErr != nil {
			v = c.msg.mimeErr.Error()
		}
	case propRcpt:
		if c.phase != PhaseRcpt {
			stack[0] = encI32(statusWrongPhase)
			return
		}
		v = c.rcpt
	default:
		stack[0] = encI32(statusBadArgument)
		return
	}
	stack[0] = c.fillString(mod, buf, capacity, v)
}

func hRcptCount(_ context.Context, c *call, _ api.Module, stack []uint64) {
	if c.txn == nil {
		stack[0] = encI32(statusWrongPhase)
		return
	}
	stack[0] = encI32(len(c.txn.Recipients))
}

func hGetRcpt(_ context.Context, c *call, mod api.Module, stack []uint64) {
	index, buf, capacity := int32(stack[0]), u32(stack[1]), u32(stack[2])
	if c.txn == nil {
		stack[0] = encI32(statusWrongPhase)
		return
	}
	if index < 0 || int(index) >= len(c.txn.Recipients) {
		stack[0] = encI32(statusNotFound)
		return
	}
	stack[0] = c.fillString(mod, buf, capacity, c.txn.Recipients[index])
}

func hGetHeader(_ context.Context, c *call, mod api.Module, stack []uint64) {
	namePtr, nameLen, index := u32(stack[0]), u32(stack[1]), int32(stack[2])
	buf, capacity := u32(stack[3]), u32(stack[4])
	name := c.read(mod, namePtr, nameLen)
	if !c.inMessage() {
		stack[0] = encI32(statusWrongPhase)
		return
	}
	if index < 0 {
		stack[0] = encI32(statusBadArgument)
		return
	}
	v, ok := c.msg.headerValue(string(name), int(index))
	if !ok {
		stack[0] = encI32(statusNotFound)
		return
	}
	stack[0] = c.fillString(mod, buf, capacity, v)
}

func hHeaderCount(_ context.Context, c *call, mod api.Module, stack []uint64) {
	name := c.readString(mod, u32(stack[0]), u32(stack[1]))
	if !c.inMessage() {
		stack[0] = encI32(statusWrongPhase)
		return
	}
	n := 0
	for {
		if _, ok := c.msg.headerValue(name, n); !ok {
			break
		}
		n++
	}
	stack[0] = encI32(n)
}

func hGetHeaders(_ context.Context, c *call, mod api.Module, stack []uint64) {
	buf, capacity := u32(stack[0]), u32(stack[1])
	if !c.inMessage() {
		stack[0] = encI32(statusWrongPhase)
		return
	}
	stack[0] = c.fill(mod, buf, capacity, c.msg.headerBlock())
}

func hBodySize(_ context.Context, c *call, _ api.Module, stack []uint64) {
	if !c.bodyAllowed() {
		stack[0] = encI64(statusWrongPhase)
		return
	}
	stack[0] = encI64(c.msg.bodySize())
}

// hGetBody copies body bytes from an offset and returns how many it copied:
// zero at or past the end. It is the one buffer call that returns a count
// rather than a full length, because the body is read in ranges.
func hGetBody(_ context.Context, c *call, mod api.Module, stack []uint64) {
	offset, buf, capacity := int64(stack[0]), u32(stack[1]), u32(stack[2])
	dst := c.read(mod, buf, capacity)
	if !c.bodyAllowed() {
		stack[0] = encI32(statusWrongPhase)
		return
	}
	if offset < 0 {
		stack[0] = encI32(statusBadArgument)
		return
	}
	stack[0] = encI32(c.msg.readBody(dst, offset))
}

func hPartCount(_ context.Context, c *call, _ api.Module, stack []uint64) {
	if !c.bodyAllowed() {
		stack[0] = encI32(statusWrongPhase)
		return
	}
	stack[0] = encI32(len(c.msg.mimeParts()))
}

func hGetPart(_ context.Context, c *call, mod api.Module, stack []uint64) {
	index, field := int32(stack[0]), int32(stack[1])
	buf, capacity := u32(stack[2]), u32(stack[3])
	if !c.bodyAllowed() {
		stack[0] = encI32(statusWrongPhase)
		return
	}
	parts := c.msg.mimeParts()
	if index < 0 || int(index) >= len(parts) {
		stack[0] = encI32(statusNotFound)
		return
	}
	p := parts[index]
	var v string
	switch field {
	case partContentType:
		v = p.contentType
	case partFileName:
		v = p.fileName
	case partDisposition:
		v = p.disposition
	case partPath:
		v = p.path
	default:
		stack[0] = encI32(statusBadArgument)
		return
	}
	stack[0] = c.fillString(mod, buf, capacity, v)
}

func hPartSize(_ context.Context, c *call, _ api.Module, stack []uint64) {
	index := int32(stack[0])
	if !c.bodyAllowed() {
		stack[0] = encI64(statusWrongPhase)
		return
	}
	parts := c.msg.mimeParts()
	if index < 0 || int(index) >= len(parts) {
		stack[0] = encI64(statusNotFound)
		return
	}
	stack[0] = encI64(parts[index].size)
}

func hGetSetting(_ context.Context, c *call, mod api.Module, stack []uint64) {
	name := c.readString(mod, u32(stack[0]), u32(stack[1]))
	buf, capacity := u32(stack[2]), u32(stack[3])
	v, ok := c.plugin.man.settings[name]
	if !ok {
		stack[0] = encI32(statusNotFound)
		return
	}
	stack[0] = c.fillString(mod, buf, capacity, v)
}
