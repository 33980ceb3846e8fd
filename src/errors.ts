// User-facing errors: one line that names the file, field or flag and what was expected.
// The CLI prints `message` alone (no stack trace) for these.
export class RingrlError extends Error {
  override name = 'RingrlError';
}
