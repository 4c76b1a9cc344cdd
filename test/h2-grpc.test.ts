// gRPC through Fulcrum: Debian's python3-grpcio server behind a `protocol: h2` pool and its
// client in front, over h2c. Unary, server streaming, client streaming and bidirectional calls;
// metadata and trailers (grpc-status, custom ones) both ways; a 1 MB message through flow
// control; an error status carried in the trailers.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { runtime, type Child } from "../src/runtime/index.ts";
import { freePort } from "./helpers/backends.ts";
import { startFulcrum, type Running } from "./helpers/fulcrum.ts";
import { spawnSync } from "node:child_process";

const PYTHON = "/usr/bin/python3"; // Debian's, where python3-grpcio installs
const dir = `/tmp/fulcrum-grpc-${runtime.name}-${Date.now()}`;

const SERVER = `
import grpc, sys
from concurrent import futures
def echo(req, ctx):
    md = dict(ctx.invocation_metadata())
    ctx.set_trailing_metadata((("x-trailer", "t-" + md.get("x-client", "?")), ("x-saw-via", md.get("via", "-"))))
    return b"echo:" + req
def count(req, ctx):
    for i in range(int(req)):
        yield str(i).encode()
def collect(it, ctx):
    return b"+".join(it)
def chat(it, ctx):
    for m in it:
        yield m.upper()
def fail(req, ctx):
    ctx.abort(grpc.StatusCode.PERMISSION_DENIED, "not for you")
h = grpc.method_handlers_generic_handler("test.Echo", {
    "Echo": grpc.unary_unary_rpc_method_handler(echo),
    "Count": grpc.unary_stream_rpc_method_handler(count),
    "Collect": grpc.stream_unary_rpc_method_handler(collect),
    "Chat": grpc.stream_stream_rpc_method_handler(chat),
    "Fail": grpc.unary_unary_rpc_method_handler(fail),
})
server = grpc.server(futures.ThreadPoolExecutor(4), options=[("grpc.max_receive_message_length", 8 << 20), ("grpc.max_send_message_length", 8 << 20)])
server.add_generic_rpc_handlers((h,))
port = server.add_insecure_port("127.0.0.1:0")
server.start()
print(port, flush=True)
server.wait_for_termination()
`;

const CLIENT = `
import grpc, json, sys
ch = grpc.insecure_channel("127.0.0.1:" + sys.argv[1], options=[("grpc.max_receive_message_length", 8 << 20)])
out = {}
r, call = ch.unary_unary("/test.Echo/Echo").with_call(b"hi", metadata=(("x-client", "c1"),), timeout=10)
out["echo"] = r.decode()
out["trailers"] = dict(call.trailing_metadata())
out["count"] = [m.decode() for m in ch.unary_stream("/test.Echo/Count")(b"5", timeout=10)]
out["collect"] = ch.stream_unary("/test.Echo/Collect")(iter([b"a", b"b", b"c"]), timeout=10).decode()
out["chat"] = [m.decode() for m in ch.stream_stream("/test.Echo/Chat")(iter([b"x", b"y", b"z"]), timeout=10)]
big = ch.unary_unary("/test.Echo/Echo")(b"z" * 1000000, timeout=20)
out["big"] = [len(big), big[:5].decode(), big.count(b"z")]
try:
    ch.unary_unary("/test.Echo/Fail")(b"", timeout=10)
    out["fail"] = "no error"
except grpc.RpcError as e:
    out["fail"] = [e.code().name, e.details()]
print(json.dumps(out))
`;

let server: Child | null = null, fulcrum: Running, port: number;
const skip: string | false = spawnSync(PYTHON, ["-c", "import grpc"]).status === 0
  ? false : "needs python3-grpcio (Debian package, importable by /usr/bin/python3)";
if (skip) console.error(`skip: ${skip}`);

async function text(stream: ReadableStream<Uint8Array>, until?: (s: string) => boolean): Promise<string> {
  const reader = stream.getReader();
  let s = "";
  const dec = new TextDecoder();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    s += dec.decode(value);
    if (until?.(s)) { reader.releaseLock(); break; }
  }
  return s;
}

before(async () => {
  if (skip) return;
  const mk = runtime.spawn(["mkdir", "-p", dir]);
  await mk.exited;
  await runtime.writeTextFile(`${dir}/server.py`, SERVER);
  await runtime.writeTextFile(`${dir}/client.py`, CLIENT);
  server = runtime.spawn([PYTHON, `${dir}/server.py`]);
  void text(server.stderr).catch(() => {});
  const upstreamPort = Number((await text(server.stdout, (s) => s.includes("\n"))).trim());
  assert.ok(upstreamPort > 0, "the gRPC server printed its port");
  port = await freePort();
  fulcrum = await startFulcrum(`
listeners:
  - { bind: 127.0.0.1:${port}, http2: true }
pools:
  grpc: { protocol: h2, servers: [127.0.0.1:${upstreamPort}] }
`);
});

after(async () => {
  await fulcrum?.stop();
  server?.kill("SIGKILL");
  await server?.exited;
  const rm = runtime.spawn(["rm", "-rf", dir]);
  await rm.exited;
});

test("grpc: unary, server-, client- and bidi-streaming calls, trailers both ways, 1 MB message and an error status, through a protocol: h2 pool", { skip }, async () => {
  const client = runtime.spawn([PYTHON, `${dir}/client.py`, String(port)]);
  const [out, err] = await Promise.all([text(client.stdout), text(client.stderr)]);
  assert.equal(await client.exited, 0, `${err}\n${fulcrum.output()}`);
  const r = JSON.parse(out);
  assert.equal(r.echo, "echo:hi");
  assert.equal(r.trailers["x-trailer"], "t-c1"); // client metadata reached the server; its trailer came back
  assert.equal(r.trailers["x-saw-via"], "2 fulcrum");
  assert.deepEqual(r.count, ["0", "1", "2", "3", "4"]);
  assert.equal(r.collect, "a+b+c");
  assert.deepEqual(r.chat, ["X", "Y", "Z"]);
  assert.deepEqual(r.big, [1000005, "echo:", 1000000]);
  assert.deepEqual(r.fail, ["PERMISSION_DENIED", "not for you"]);
});
