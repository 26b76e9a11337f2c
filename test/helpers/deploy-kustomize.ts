/**
 * A small kustomize renderer for test/deploy.test.ts: enough of kustomize's semantics to render
 * deploy/k8s/base and deploy/k8s/overlays/* without a kustomize binary, and strict about the rest —
 * a kustomization field or generator behaviour it does not implement is an error, not ignored.
 * When kubectl is installed the test compares this rendering with `kubectl kustomize`.
 *
 * Supported: resources (files and kustomization directories), namespace, labels (pairs,
 * includeSelectors: false, includeTemplates), images, replicas, patches (strategic merge for
 * built-in kinds, JSON merge patch for custom resources, JSON 6902 with a target), and
 * configMapGenerator / secretGenerator with behavior replace or merge (envs and literals).
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { parse, parseAllDocuments } from "yaml";

export type KObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
};

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

export type RenderOptions = {
  /**
   * Read a generator's `<file>.example` instead of `<file>` when the example exists: the real file
   * is git-ignored and holds a secret that tests must neither need nor read.
   */
  envFileExamples?: boolean;
};

const KUSTOMIZATION_FIELDS = new Set([
  "apiVersion",
  "kind",
  "namespace",
  "resources",
  "labels",
  "images",
  "replicas",
  "patches",
  "configMapGenerator",
  "secretGenerator",
]);

/** Kinds that are not namespaced (the namespace transformer leaves them alone). */
const CLUSTER_SCOPED = new Set(["Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "PriorityClass", "StorageClass"]);
const WORKLOADS = new Set(["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"]);
/** API groups whose kinds take strategic merge patches; anything else is a custom resource. */
const BUILTIN_GROUPS = new Set(["", "apps", "batch", "policy", "autoscaling", "networking.k8s.io", "rbac.authorization.k8s.io"]);
/** Strategic merge keys of the lists that appear in pod specs. */
const MERGE_KEYS: Record<string, string> = {
  containers: "name",
  initContainers: "name",
  ephemeralContainers: "name",
  volumes: "name",
  env: "name",
  imagePullSecrets: "name",
  volumeMounts: "mountPath",
  ports: "containerPort",
};

export function loadYamlDocuments(file: string): unknown[] {
  return parseAllDocuments(readFileSync(file, "utf8"), { merge: true })
    .map((doc) => {
      if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors.map((e) => e.message).join("; ")}`);
      return doc.toJS() as unknown;
    })
    .filter((doc) => doc !== null && doc !== undefined);
}

export function readKustomization(dir: string): Record<string, unknown> {
  const file = join(dir, "kustomization.yaml");
  const k = parse(readFileSync(file, "utf8")) as Record<string, unknown>;
  const unknown = Object.keys(k).filter((key) => !KUSTOMIZATION_FIELDS.has(key));
  if (unknown.length > 0) throw new Error(`${file}: the test renderer does not implement ${unknown.join(", ")}`);
  return k;
}

export function renderKustomization(dir: string, options: RenderOptions = {}): KObject[] {
  const k = readKustomization(dir);
  let objects: KObject[] = [];

  for (const entry of (k.resources as string[] | undefined) ?? []) {
    const path = resolve(dir, entry);
    if (statSync(path).isDirectory()) objects.push(...renderKustomization(path, options));
    else objects.push(...(loadYamlDocuments(path) as KObject[]));
  }
  for (const o of objects) {
    if (!o.apiVersion || !o.kind || !o.metadata?.name) throw new Error(`${dir}: a resource without apiVersion, kind or metadata.name`);
  }

  for (const kind of ["ConfigMap", "Secret"] as const) {
    const field = kind === "ConfigMap" ? "configMapGenerator" : "secretGenerator";
    for (const gen of (k[field] as Generator[] | undefined) ?? []) objects = applyGenerator(dir, kind, gen, objects, options);
  }

  for (const p of (k.patches as PatchEntry[] | undefined) ?? []) objects = applyPatch(dir, p, objects);

  if (typeof k.namespace === "string") {
    for (const o of objects) if (!CLUSTER_SCOPED.has(o.kind)) o.metadata.namespace = k.namespace;
  }

  for (const l of (k.labels as LabelsEntry[] | undefined) ?? []) {
    if (l.includeSelectors) throw new Error(`${dir}: labels with includeSelectors: true is not implemented by the test renderer`);
    for (const o of objects) {
      o.metadata.labels = { ...(o.metadata.labels ?? {}), ...l.pairs };
      if (l.includeTemplates && WORKLOADS.has(o.kind)) {
        const template = (o.spec as { template?: { metadata?: { labels?: Record<string, string> } } } | undefined)?.template;
        if (template) template.metadata = { ...(template.metadata ?? {}), labels: { ...(template.metadata?.labels ?? {}), ...l.pairs } };
      }
    }
  }

  for (const img of (k.images as ImageEntry[] | undefined) ?? []) {
    for (const o of objects) {
      for (const c of podContainers(o)) {
        const { name, tag, digest } = splitImage(c.image);
        if (name !== img.name) continue;
        const newName = img.newName ?? name;
        if (img.digest) c.image = `${newName}@${img.digest}`;
        else if (img.newTag) c.image = `${newName}:${img.newTag}`;
        else c.image = `${newName}${digest ? `@${digest}` : tag ? `:${tag}` : ""}`;
      }
    }
  }

  for (const r of (k.replicas as { name: string; count: number }[] | undefined) ?? []) {
    const targets = objects.filter((o) => WORKLOADS.has(o.kind) && o.kind !== "Job" && o.metadata.name === r.name);
    if (targets.length === 0) throw new Error(`${dir}: replicas for ${r.name}, which is not a workload here`);
    for (const o of targets) (o.spec as { replicas?: number }).replicas = r.count;
  }

  return objects;
}

type Generator = { name: string; behavior?: string; type?: string; envs?: string[]; literals?: string[]; files?: string[] };
type PatchEntry = { path?: string; patch?: string; target?: { group?: string; version?: string; kind?: string; name?: string } };
type LabelsEntry = { pairs: Record<string, string>; includeSelectors?: boolean; includeTemplates?: boolean };
type ImageEntry = { name: string; newName?: string; newTag?: string; digest?: string };

function applyGenerator(dir: string, kind: "ConfigMap" | "Secret", gen: Generator, objects: KObject[], options: RenderOptions): KObject[] {
  if (gen.behavior !== "replace" && gen.behavior !== "merge") {
    throw new Error(`${dir}: ${kind} generator ${gen.name}: only behavior replace or merge is implemented by the test renderer (create adds a hash suffix)`);
  }
  if (gen.files) throw new Error(`${dir}: ${kind} generator ${gen.name}: files is not implemented by the test renderer`);
  const values: Record<string, string> = {};
  for (const envFile of gen.envs ?? []) {
    let path = resolve(dir, envFile);
    if (options.envFileExamples && existsSync(`${path}.example`)) path = `${path}.example`;
    Object.assign(values, parseEnvFile(readFileSync(path, "utf8")));
  }
  for (const literal of gen.literals ?? []) {
    const i = literal.indexOf("=");
    values[literal.slice(0, i)] = literal.slice(i + 1);
  }
  const existing = objects.find((o) => o.kind === kind && o.metadata.name === gen.name);
  if (!existing) throw new Error(`${dir}: ${kind} generator ${gen.name} with behavior ${gen.behavior}, but the base has no such ${kind}`);

  const encode = (v: string) => (kind === "Secret" ? Buffer.from(v).toString("base64") : v);
  const current: Record<string, string> = {};
  if (gen.behavior === "merge") {
    for (const [key, v] of Object.entries((existing.data as Record<string, string> | undefined) ?? {})) current[key] = v;
    for (const [key, v] of Object.entries((existing.stringData as Record<string, string> | undefined) ?? {})) current[key] = encode(v);
  }
  for (const [key, v] of Object.entries(values)) current[key] = encode(v);

  // Like kustomize: the resource keeps its metadata (name, labels); its data is replaced or merged.
  const generated: KObject = { apiVersion: "v1", kind, metadata: structuredClone(existing.metadata), data: current };
  if (kind === "Secret") generated.type = gen.type ?? (existing.type as string | undefined) ?? "Opaque";
  return objects.map((o) => (o === existing ? generated : o));
}

export function parseEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const i = line.indexOf("=");
    if (i <= 0) throw new Error(`not KEY=VALUE: ${line}`);
    out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}

function applyPatch(dir: string, entry: PatchEntry, objects: KObject[]): KObject[] {
  const docs = entry.path ? loadYamlDocuments(resolve(dir, entry.path)) : parseAllDocuments(entry.patch ?? "").map((d) => d.toJS() as unknown);
  const where = `${dir}: patch ${entry.path ?? "(inline)"}`;
  if (docs.length === 1 && Array.isArray(docs[0])) {
    if (!entry.target) throw new Error(`${where}: a JSON 6902 patch needs a target`);
    const targets = objects.filter((o) => matchesTarget(o, entry.target ?? {}));
    if (targets.length === 0) throw new Error(`${where}: the target matches no resource`);
    return objects.map((o) => (targets.includes(o) ? (applyJson6902(o as unknown as Json, docs[0] as Operation[], where) as unknown as KObject) : o));
  }
  let out = objects;
  for (const doc of docs as KObject[]) {
    if (!doc.kind || !doc.metadata?.name) throw new Error(`${where}: a strategic merge patch needs kind and metadata.name`);
    const target = out.find((o) => o.kind === doc.kind && o.metadata.name === doc.metadata.name && (!doc.apiVersion || o.apiVersion === doc.apiVersion));
    if (!target) throw new Error(`${where}: no ${doc.kind} ${doc.metadata.name} to patch`);
    if (entry.target && !matchesTarget(target, entry.target)) throw new Error(`${where}: the patch does not match its target`);
    const group = target.apiVersion.includes("/") ? target.apiVersion.split("/")[0] : "";
    const merged = BUILTIN_GROUPS.has(group ?? "")
      ? strategicMerge(target as unknown as Json, doc as unknown as Json)
      : jsonMergePatch(target as unknown as Json, doc as unknown as Json);
    out = out.map((o) => (o === target ? (merged as unknown as KObject) : o));
  }
  return out;
}

function matchesTarget(o: KObject, t: NonNullable<PatchEntry["target"]>): boolean {
  const [group, version] = o.apiVersion.includes("/") ? o.apiVersion.split("/") : ["", o.apiVersion];
  return (
    (t.kind === undefined || t.kind === o.kind) &&
    (t.name === undefined || t.name === o.metadata.name) &&
    (t.group === undefined || t.group === group) &&
    (t.version === undefined || t.version === version)
  );
}

const isObject = (v: unknown): v is JsonObject => typeof v === "object" && v !== null && !Array.isArray(v);

export function jsonMergePatch(target: Json, patch: Json): Json {
  if (!isObject(patch)) return structuredClone(patch);
  const out: JsonObject = isObject(target) ? structuredClone(target) : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    else out[key] = jsonMergePatch(out[key] ?? null, value);
  }
  return out;
}

export function strategicMerge(target: Json, patch: Json, field = ""): Json {
  if (Array.isArray(patch)) {
    const key = MERGE_KEYS[field];
    if (!key || !Array.isArray(target)) return structuredClone(patch);
    const out = structuredClone(target) as Json[];
    for (const item of patch) {
      if (!isObject(item)) return structuredClone(patch);
      const i = out.findIndex((t) => isObject(t) && t[key] === item[key]);
      if (i >= 0) out[i] = strategicMerge(out[i] ?? null, item);
      else out.push(structuredClone(item));
    }
    return out;
  }
  if (!isObject(patch)) return structuredClone(patch);
  if ("$patch" in patch) throw new Error("$patch directives are not implemented by the test renderer");
  const out: JsonObject = isObject(target) ? structuredClone(target) : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    else out[key] = strategicMerge(out[key] ?? null, value, key);
  }
  return out;
}

type Operation = { op: "add" | "replace" | "remove"; path: string; value?: Json };

export function applyJson6902(doc: Json, ops: Operation[], where = "patch"): Json {
  const out = structuredClone(doc);
  for (const op of ops) {
    if (!["add", "replace", "remove"].includes(op.op)) throw new Error(`${where}: op ${op.op} is not implemented by the test renderer`);
    const parts = op.path
      .split("/")
      .slice(1)
      .map((p) => p.replace(/~1/g, "/").replace(/~0/g, "~"));
    const last = parts.pop();
    if (last === undefined) throw new Error(`${where}: empty path`);
    let parent: Json = out;
    for (const p of parts) {
      const next: Json | undefined = Array.isArray(parent) ? parent[Number(p)] : isObject(parent) ? parent[p] : undefined;
      if (next === undefined) throw new Error(`${where}: ${op.path} does not exist`);
      parent = next;
    }
    if (Array.isArray(parent)) {
      const index = last === "-" ? parent.length : Number(last);
      if (op.op === "add") parent.splice(index, 0, structuredClone(op.value ?? null));
      else if (index >= parent.length) throw new Error(`${where}: ${op.path} does not exist`);
      else if (op.op === "replace") parent[index] = structuredClone(op.value ?? null);
      else parent.splice(index, 1);
    } else if (isObject(parent)) {
      if (op.op !== "add" && !(last in parent)) throw new Error(`${where}: ${op.path} does not exist`);
      if (op.op === "remove") delete parent[last];
      else parent[last] = structuredClone(op.value ?? null);
    } else {
      throw new Error(`${where}: ${op.path} does not exist`);
    }
  }
  return out;
}

type Container = { name: string; image: string };

/** The containers and init containers of a workload's pod template. */
export function podContainers(o: KObject): Container[] {
  if (!WORKLOADS.has(o.kind)) return [];
  const spec = (o.spec as { template?: { spec?: { containers?: Container[]; initContainers?: Container[] } } } | undefined)?.template?.spec;
  return [...(spec?.containers ?? []), ...(spec?.initContainers ?? [])];
}

export function splitImage(image: string): { name: string; tag?: string; digest?: string } {
  const [withTag, digest] = image.split("@") as [string, string | undefined];
  const slash = withTag.lastIndexOf("/");
  const colon = withTag.lastIndexOf(":");
  if (colon > slash) return { name: withTag.slice(0, colon), tag: withTag.slice(colon + 1), ...(digest ? { digest } : {}) };
  return { name: withTag, ...(digest ? { digest } : {}) };
}

/** Every file a kustomization directory (and its bases) reads. */
export function kustomizationInputs(dir: string): { resources: string[]; patches: string[]; envFiles: string[] } {
  const k = readKustomization(dir);
  const out = { resources: [] as string[], patches: [] as string[], envFiles: [] as string[] };
  for (const entry of (k.resources as string[] | undefined) ?? []) {
    const path = resolve(dir, entry);
    if (statSync(path).isDirectory()) {
      const inner = kustomizationInputs(path);
      out.resources.push(...inner.resources);
      out.patches.push(...inner.patches);
      out.envFiles.push(...inner.envFiles);
    } else out.resources.push(path);
  }
  for (const p of (k.patches as PatchEntry[] | undefined) ?? []) if (p.path) out.patches.push(resolve(dir, p.path));
  for (const field of ["configMapGenerator", "secretGenerator"]) {
    for (const g of (k[field] as Generator[] | undefined) ?? []) for (const e of g.envs ?? []) out.envFiles.push(resolve(dir, e));
  }
  return out;
}
