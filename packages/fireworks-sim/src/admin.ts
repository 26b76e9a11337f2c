import type { IncomingMessage, ServerResponse } from "node:http";
import { z } from "zod";
import { describeIssues, HttpError, readJson, sendJson } from "./http.ts";
import { type InjectedFault, InjectBodySchema, type SimOptionsInput } from "./options.ts";
import type { SimStats } from "./stats.ts";

/** What the admin endpoints drive; the simulator's own methods. */
export type AdminTarget = {
  configure(options: SimOptionsInput): void;
  injectNext(faults: InjectedFault[]): void;
  reset(): void;
  stats(): SimStats;
};

/**
 * `/_sim/*`: lets another process (a benchmark, a demo) steer a running simulator.
 * Unauthenticated on purpose: the simulator only ever listens on test and dev machines.
 */
export async function handleAdmin(target: AdminTarget, path: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const route = `${req.method} ${path}`;
  switch (route) {
    case "GET /_sim/stats":
      return sendJson(res, 200, target.stats());
    case "POST /_sim/configure": {
      // Partial: only the fields sent change. `null` removes a limit, e.g. {"rpm": null}.
      const update = validate(z.record(z.string(), z.unknown()), await readJson(req), "options");
      try {
        target.configure(update as SimOptionsInput);
      } catch (err) {
        if (err instanceof z.ZodError) throw new HttpError(400, "INVALID_ARGUMENT", `invalid options: ${describeIssues(err)}`);
        throw err;
      }
      return sendJson(res, 200, { ok: true });
    }
    case "POST /_sim/inject": {
      const faults = validate(InjectBodySchema, await readJson(req), "faults");
      target.injectNext(faults);
      return sendJson(res, 200, { ok: true, injected: faults.length });
    }
    case "POST /_sim/reset":
      target.reset();
      return sendJson(res, 200, { ok: true });
    default: {
      const known = ["GET /_sim/stats", "POST /_sim/configure", "POST /_sim/inject", "POST /_sim/reset"];
      const pathKnown = known.some((k) => k.endsWith(` ${path}`));
      throw new HttpError(pathKnown ? 405 : 404, pathKnown ? "METHOD_NOT_ALLOWED" : "NOT_FOUND", `no admin route ${route}; try ${known.join(", ")}`);
    }
  }
}

function validate<S extends z.ZodType>(schema: S, json: unknown, what: string): z.output<S> {
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw new HttpError(400, "INVALID_ARGUMENT", `invalid ${what}: ${describeIssues(parsed.error)}`);
  return parsed.data;
}
