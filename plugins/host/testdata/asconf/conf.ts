// The AssemblyScript SDK's ABI conformance plugin: the same reports as
// testdata/goconf, so that one test checks both SDKs.
import * as lg from "../../../../sdk/assemblyscript/lambgate";
import { Action } from "../../../../sdk/assemblyscript/lambgate";
export { lambgate_abi_version_1 } from "../../../../sdk/assemblyscript/lambgate";

function statusName(s: i32): string {
  if (s == lg.Status.OK) return "ok";
  if (s == lg.Status.NotFound) return "not_found";
  if (s == lg.Status.BadArgument) return "bad_argument";
  if (s == lg.Status.WrongPhase) return "wrong_phase";
  if (s == lg.Status.Limit) return "limit";
  if (s == lg.Status.TempFailure) return "temp_failure";
  if (s == lg.Status.NotSupported) return "not_supported";
  return "status " + s.toString();
}

// valueOr returns v, or the name of the last status when it failed.
function valueOr(v: string): string {
  return lg.lastStatus() == lg.Status.OK ? v : statusName(lg.lastStatus());
}

function hex(b: Uint8Array): string {
  const digits = "0123456789abcdef";
  let s = "";
  for (let i = 0; i < b.length; i++) {
    s += digits.charAt(b[i] >> 4) + digits.charAt(b[i] & 15);
  }
  return s;
}

export function lambgate_on_connect(): Action {
  lg.helo();
  const heloStatus = statusName(lg.lastStatus());
  const greeting = lg.setting("greeting");
  const missing = lg.setting("missing") != null;
  return lg.rejectWith(550, "5.7.1",
    "addr=" + lg.clientAddr() + " port=" + lg.clientPort().toString() + " helo=" + heloStatus +
    " plugin=" + lg.pluginName() + " greeting=" + (greeting == null ? "" : greeting) +
    " list=" + lg.settingList("list").join(",") + " missing=" + missing.toString());
}

export function lambgate_on_helo(): Action {
  const h = valueOr(lg.helo());
  const from = valueOr(lg.mailFrom());
  return lg.rejectWith(550, "5.7.1", "helo=" + h + " tls=" + (lg.tls() ? "1" : "0") + " from=" + from);
}

export function lambgate_on_mail(): Action {
  const from = valueOr(lg.mailFrom());
  const rcpts = lg.recipients().join(",");
  const queue = lg.queueId();
  const spf = lg.spf();
  const r = valueOr(lg.rcpt());
  return lg.rejectWith(550, "5.7.1",
    "from=" + from + " rcpts=" + rcpts + " queue=" + queue + " spf=" + spf + " rcpt=" + r);
}

export function lambgate_on_rcpt(): Action {
  const r = valueOr(lg.rcpt());
  lg.header("Subject");
  const hdr = statusName(lg.lastStatus());
  const badCode = statusName(lg.setReply(250, "", "ok"));
  const badEnh = statusName(lg.setReply(451, "5.7.1", "mismatch"));
  return lg.tempfailWith(451, "4.7.1", "rcpt=" + r + " first=" + lg.recipients()[0] +
    " hdr=" + hdr + " badcode=" + badCode + " badenh=" + badEnh);
}

export function lambgate_on_headers(): Action {
  const subject = lg.header("Subject");
  const second = lg.header("Received", 1);
  const block = String.UTF8.byteLength(lg.headerBlock());
  const body = statusName(<i32>lg.bodySize());
  const re = lg.regexCompile("^Gr.*e$");
  const hre = lg.regexCompile("(?m)^Received: by b");
  const rebad = statusName(lg.regexCompile("("));
  lg.addHeader("X-Conf-Headers",
    "subject=" + (subject == null ? "" : subject) +
    " count=" + lg.headerCount("received").toString() +
    " second=" + (second == null ? "" : second) +
    " block=" + block.toString() + " body=" + body +
    " search=" + lg.searchHeaders("SUBJECT:", true).toString() +
    " re=" + lg.regexMatchHeader(re, "Subject").toString() +
    " hre=" + lg.regexMatchHeaders(hre).toString() +
    " rebad=" + rebad + " badname=" + statusName(lg.addHeader("Bad Name", "x")));
  lg.addTag("conf:headers");
  return Action.Continue;
}

export function lambgate_on_body(): Action {
  const size = lg.bodySize();
  const first = new Uint8Array(4);
  const n = lg.readBody(first, 0);
  const parts = lg.parts();
  const ps = new Array<string>();
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i];
    ps.push(p.path + ":" + p.contentType + ":" + p.fileName + ":" + p.disposition + ":" + p.size.toString());
  }
  const sum = lg.hashBytes(lg.Hash.SHA256, Uint8Array.wrap(String.UTF8.encode("abc")));
  const bodySum = lg.hashBody(lg.Hash.MD5);
  const needle = lg.regexCompile("nee+dle");
  lg.addHeader("X-Conf-Body",
    "mimeerr=" + lg.mimeError() + " size=" + size.toString() +
    " first=" + String.UTF8.decodeUnsafe(first.dataStart, <usize>n) +
    " parts=" + ps.join(",") +
    " search=" + lg.searchBody("NEEDLE", true).toString() +
    " nosearch=" + lg.searchBody("absent", false).toString() +
    " re=" + lg.regexMatchBody(needle).toString() +
    " sha=" + hex(sum).substring(0, 8) + " bodymd5=" + hex(bodySum));
  return Action.Continue;
}

export function lambgate_on_done(): Action {
  const a = lg.lookup(lg.DNS.A, "host.example");
  const aStatus = statusName(lg.lastStatus());
  const txt = lg.lookup(lg.DNS.TXT, "host.example");
  const mx = lg.lookup(lg.DNS.MX, "host.example");
  lg.lookup(lg.DNS.A, "nx.example");
  const nx = statusName(lg.lastStatus());
  lg.lookup(lg.DNS.A, "servfail.example");
  const tf = statusName(lg.lastStatus());
  const one = lg.kvIncr("counter", 1, 60);
  const two = lg.kvIncr("counter", 1, 60);
  lg.kvSet("key", "stored", 0);
  const stored = lg.kvGet("key");
  const kvMissing = lg.kvGet("absent") != null;
  lg.log(lg.Level.Info, "conformance done");
  const aaaa = lg.lookup(lg.DNS.AAAA, "host.example");
  const re = lg.regexCompile("^ab+c$");
  lg.addHeader("X-Conf-Done",
    "a=" + a.join(",") + "/" + aStatus + " aaaa=" + aaaa.join(",") + " phase=" + lg.phase() +
    " restr=" + lg.regexMatchString(re, "abbc").toString() + "," + lg.regexMatchString(re, "ac").toString() +
    " txt=" + txt.join("|") + " mx=" + mx.join("|") +
    " nx=" + nx + " tf=" + tf + " now=" + lg.nowMs().toString() +
    " incr=" + one.toString() + "," + two.toString() +
    " kv=" + (stored == null ? "" : stored) + " kvmissing=" + kvMissing.toString());
  return Action.Quarantine;
}
