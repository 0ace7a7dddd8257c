// Canonical JSON: keys sorted, no whitespace, undefined members dropped, bigints as decimal strings. What nodes sign and hash
// (hardware specs, heartbeats) so that every party serialises the same object to the same bytes.

/** The canonical JSON text of `value`. Pure. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  // Token amounts are bigints: a decimal string, as everywhere in the wire formats.
  if (typeof value === "bigint") return JSON.stringify(value.toString());
  return JSON.stringify(value);
}
