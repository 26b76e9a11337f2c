/**
 * The simulator's own CPU per request with an instant model (latency 0): what `overhead` steals from
 * the fleet it measures. The simulator runs in a child process (which reports its process.cpuUsage()
 * over IPC); this process drives it with the judge worker's own client (the `openai` SDK, the
 * judge's prompt, `json_schema` response format, max_tokens 128).
 *
 *   node_modules/.bin/tsx bench/sim-cpu.ts [--n 4000] [--kb 5|100] [--concurrency 16] [--warmup 2000] [--profile]
 *
 * CPU per request is steadier than requests/s on a busy machine, but both move with what else runs:
 * the 1-minute load average is printed to judge that.
 */
import { fork } from "node:child_process";
import { availableParallelism, loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import { createSimulator, type SimStats } from "@tracesift/fireworks-sim";

type Usage = { cpu: NodeJS.CpuUsage; stats: SimStats };

if (process.argv.includes("--child")) {
  const sim = createSimulator({ latencyMs: 0 });
  const { url } = await sim.listen(0, "127.0.0.1");
  process.on("message", async (msg) => {
    if (msg === "usage") process.send?.({ cpu: process.cpuUsage(), stats: sim.stats() } satisfies Usage);
    if (msg === "exit") {
      await sim.close();
      process.exit(0); // --cpu-prof writes its profile on exit
    }
  });
  process.send?.({ url });
} else {
  await main();
}

async function main(): Promise<void> {
  // Imported here, not at the top, so the simulator's process loads only the simulator.
  const { createJudgeClient } = await import("@tracesift/judge");
  const { makeMessages, parseFlags, rng } = await import("./lib/common.ts");
  const flags = parseFlags("sim-cpu", {
    n: { default: 4000, help: "measured requests" },
    // Until the JIT has compiled the hot paths (on background threads, counted in the child's CPU) the
    // figure runs high: a few hundred requests are not enough for a steady one.
    warmup: { default: 2000, help: "requests sent before measuring" },
    kb: { default: 5, help: "conversation size in KB (the overhead benchmark uses 5 and 100)" },
    concurrency: { default: 16, help: "concurrent clients" },
    profile: { default: false, help: "run the simulator under --cpu-prof, writing to /tmp/simprof" },
  });
  const profile = flags.profile ? ["--cpu-prof", "--cpu-prof-dir=/tmp/simprof"] : [];
  const child = fork(fileURLToPath(import.meta.url), ["--child"], { execArgv: ["--import", "tsx", ...profile] });
  const reply = <T>() => new Promise<T>((resolve) => child.once("message", (m) => resolve(m as T)));
  const usage = () => {
    const next = reply<Usage>();
    child.send("usage");
    return next;
  };
  try {
    const { url } = await reply<{ url: string }>();
    // The worker's own client: the judge prompt, json_schema response format, its HTTP stack.
    const client = createJudgeClient({
      baseURL: url,
      apiKey: "bench",
      model: "accounts/fireworks/models/qwen3p5-35b-a3b",
      timeoutMs: 30_000,
      maxTokens: 128,
      responseFormat: "json_schema",
    });
    const conversation = { messages: makeMessages(rng(42), flags.kb * 1024) };
    const send = async (total: number) => {
      let sent = 0;
      const worker = async () => {
        while (sent++ < total) await client.judge(conversation);
      };
      await Promise.all(Array.from({ length: flags.concurrency }, worker));
    };

    await send(flags.warmup);
    const before = await usage();
    const started = performance.now();
    await send(flags.n);
    const seconds = (performance.now() - started) / 1000;
    const after = await usage();

    const ms = (k: keyof NodeJS.CpuUsage) => (after.cpu[k] - before.cpu[k]) / 1000 / flags.n;
    const ok = after.stats.byStatus["200"] - before.stats.byStatus["200"];
    console.log(`sim-cpu: ${flags.n} requests (${flags.kb} KB conversation), ${flags.concurrency} concurrent, latency 0`);
    console.log(`  requests/s                ${(flags.n / seconds).toFixed(0)}`);
    console.log(`  simulator CPU ms/request  ${(ms("user") + ms("system")).toFixed(3)}  (user ${ms("user").toFixed(3)}, system ${ms("system").toFixed(3)})`);
    console.log(`  answered 200              ${ok} of ${flags.n}`);
    console.log(`  load average (1 min)      ${loadavg()[0]?.toFixed(2)} on ${availableParallelism()} cores`);
    if (flags.profile) console.log("  profile                   /tmp/simprof (written when the simulator exits)");
  } finally {
    child.send("exit");
    await new Promise((resolve) => child.once("exit", resolve));
  }
}
