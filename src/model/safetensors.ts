// The safetensors format: an 8-byte little-endian header length, a JSON header mapping tensor
// names to {dtype, shape, data_offsets}, then the raw little-endian data. Small enough to read
// and write directly; errors name the file and the tensor.
import { closeSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { RingrlError } from '../errors.ts';

export interface NamedArray {
  shape: number[];
  data: Float32Array;
}

const elementSize: Record<string, number> = { F32: 4, F16: 2, BF16: 2, F64: 8 };

/** Read every tensor as Float32Array (F32, F16, BF16 and F64 are converted). */
export function readSafetensors(path: string): Map<string, NamedArray> {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    throw new RingrlError(`${path}: cannot read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  if (bytes.length < 8) throw new RingrlError(`${path}: not a safetensors file (${bytes.length} bytes, expected an 8-byte header length)`);
  const headerLength = Number(bytes.readBigUInt64LE(0));
  if (headerLength > bytes.length - 8) throw new RingrlError(`${path}: header length ${headerLength} exceeds the file size ${bytes.length}`);
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  try {
    header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8'));
  } catch {
    throw new RingrlError(`${path}: the safetensors header is not valid JSON`);
  }
  const base = 8 + headerLength;
  const ownBuffer = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength;
  const out = new Map<string, NamedArray>();
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const size = elementSize[info.dtype];
    if (!size) throw new RingrlError(`${path}: tensor '${name}' has dtype ${info.dtype}; expected F32, F16, BF16 or F64`);
    const [start, end] = info.data_offsets;
    const count = info.shape.reduce((a, b) => a * b, 1);
    if (end - start !== count * size || base + end > bytes.length) throw new RingrlError(`${path}: tensor '${name}' data_offsets [${start}, ${end}] do not match shape [${info.shape}] of ${info.dtype}`);
    const raw = bytes.subarray(base + start, base + end);
    // F32 on a little-endian host: a view of the file's bytes, no copy (they stay alive with it);
    // not for a small file, whose bytes may sit in Node's shared buffer pool.
    const view = info.dtype === 'F32' && littleEndian && ownBuffer && raw.byteOffset % 4 === 0 ? new Float32Array(raw.buffer, raw.byteOffset, count) : null;
    out.set(name, { shape: info.shape, data: view ?? toFloat32(raw, info.dtype, count) });
  }
  return out;
}

const littleEndian = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

function toFloat32(raw: Buffer, dtype: string, count: number): Float32Array {
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const out = new Float32Array(count);
  if (dtype === 'F32' && littleEndian) {
    new Uint8Array(out.buffer).set(raw); // one memcpy (the element loop below ran at ~0.2 GB/s)
  } else if (dtype === 'F32') {
    for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true);
  } else if (dtype === 'F64') {
    for (let i = 0; i < count; i++) out[i] = view.getFloat64(i * 8, true);
  } else if (dtype === 'BF16') {
    const u32 = new Uint32Array(out.buffer);
    for (let i = 0; i < count; i++) u32[i] = view.getUint16(i * 2, true) << 16;
  } else {
    for (let i = 0; i < count; i++) out[i] = halfToFloat(view.getUint16(i * 2, true));
  }
  return out;
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * 2 ** -14 * (frac / 1024);
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * 2 ** (exp - 15) * (1 + frac / 1024);
}

/** Write F32 tensors atomically (temp file + rename), sorted by name like the Python library. */
export function writeSafetensors(path: string, tensors: Map<string, NamedArray>, metadata: Record<string, string> = {}): void {
  const names = [...tensors.keys()].sort();
  const header: Record<string, unknown> = { __metadata__: { format: 'pt', ...metadata } };
  let offset = 0;
  for (const name of names) {
    const t = tensors.get(name)!;
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + json.length) % 8)) % 8); // align data to 8 bytes
  const headerBytes = Buffer.from(json, 'utf8');
  const prefix = Buffer.alloc(8 + headerBytes.length);
  prefix.writeBigUInt64LE(BigInt(headerBytes.length), 0);
  headerBytes.copy(prefix, 8);
  // Tensor by tensor from their own memory: no file-sized buffer to fill and copy first.
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    writeAll(fd, prefix);
    for (const name of names) {
      const t = tensors.get(name)!;
      writeAll(fd, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    }
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

function writeAll(fd: number, bytes: Uint8Array): void {
  for (let at = 0; at < bytes.length; ) at += writeSync(fd, bytes, at, bytes.length - at);
}
