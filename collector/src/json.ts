/** A request body as JSON, or undefined when it is absent or not JSON (the caller answers 400). */
export function parseJson(body: unknown): unknown {
  if (typeof body != 'string') return undefined;
  try {
    return JSON.parse(body);
  } catch {
    return undefined;
  }
}
