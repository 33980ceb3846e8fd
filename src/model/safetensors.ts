// The safetensors format: an 8-byte little-endian header length, a JSON header mapping tensor
// names to {dtype, shape, data_offsets}, then the raw little-endian data. Small enough to read
// and write directly; errors name the file and the tensor.
//
// Reading and writing go one tensor at a time through a scratch buffer, never the whole file:
// loading a bf16 checkpoint then peaks at about the float32 model (plus its largest tensor),
// not the file plus the model.
import { closeSync, fstatSync, openSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { RingrlError } from '../errors.ts';
import { byCodeUnit } from '../util/order.ts';

/** The floating-point dtypes ringrl reads (F64 too) and writes, by their safetensors names. */
export const storedDtypes = ['F32', 'BF16', 'F16'] as const;
export type StoredDtype = (typeof storedDtypes)[number];

export interface NamedArray {
  shape: number[];
  data: Float32Array;
  /** The dtype the tensor was stored in (when read from a file). */
  dtype?: string;
}

interface HeaderEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

const elementSize: Record<string, number> = { F32: 4, F16: 2, BF16: 2, F64: 8 };

let scratch = Buffer.alloc(0);
function scratchBytes(n: number): Buffer {
  if (scratch.length < n) scratch = Buffer.alloc(Math.max(n, scratch.length * 2));
  return scratch.subarray(0, n);
}

/** The header of a safetensors file: tensor entries by name and where the data starts. */
export function readSafetensorsHeader(
  path: string,
  fd: number,
): { entries: Map<string, HeaderEntry>; base: number; size: number } {
  const size = fstatSync(fd).size;
  if (size < 8)
    throw new RingrlError(`${path}: not a safetensors file (${size} bytes, expected an 8-byte header length)`);
  const lengthBytes = Buffer.alloc(8);
  readSync(fd, lengthBytes, 0, 8, 0);
  const headerLength = Number(lengthBytes.readBigUInt64LE(0));
  if (headerLength > size - 8)
    throw new RingrlError(`${path}: header length ${headerLength} exceeds the file size ${size}`);
  const headerBytes = Buffer.alloc(headerLength);
  readSync(fd, headerBytes, 0, headerLength, 8);
  let header: Record<string, HeaderEntry>;
  try {
    header = JSON.parse(headerBytes.toString('utf8'));
  } catch {
    throw new RingrlError(`${path}: the safetensors header is not valid JSON`);
  }
  const entries = new Map<string, HeaderEntry>();
  for (const [name, info] of Object.entries(header)) if (name !== '__metadata__') entries.set(name, info);
  return { entries, base: 8 + headerLength, size };
}

/**
 * Read tensors as Float32Array (F32, F16, BF16 and F64 are converted), one at a time.
 * `wanted` limits which tensors are read (the others are skipped without reading their bytes).
 */
export function readSafetensors(path: string, wanted?: (name: string) => boolean): Map<string, NamedArray> {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    throw new RingrlError(
      `${path}: cannot read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
    );
  }
  try {
    const { entries, base, size: fileSize } = readSafetensorsHeader(path, fd);
    const out = new Map<string, NamedArray>();
    for (const [name, info] of entries) {
      if (wanted && !wanted(name)) continue;
      const size = elementSize[info.dtype];
      if (!size)
        throw new RingrlError(`${path}: tensor '${name}' has dtype ${info.dtype}; expected F32, F16, BF16 or F64`);
      const [start, end] = info.data_offsets;
      const count = info.shape.reduce((a, b) => a * b, 1);
      if (end - start !== count * size || base + end > fileSize)
        throw new RingrlError(
          `${path}: tensor '${name}' data_offsets [${start}, ${end}] do not match shape [${info.shape}] of ${info.dtype}`,
        );
      const data = new Float32Array(count);
      if (info.dtype === 'F32') {
        readExactly(fd, new Uint8Array(data.buffer), base + start, path);
      } else {
        const raw = scratchBytes(end - start);
        readExactly(fd, raw, base + start, path);
        decode(raw, info.dtype, data);
      }
      out.set(name, { shape: info.shape, data, dtype: info.dtype });
    }
    return out;
  } finally {
    closeSync(fd);
  }
}

function readExactly(fd: number, into: Uint8Array, position: number, path: string): void {
  let done = 0;
  while (done < into.length) {
    const n = readSync(fd, into, done, Math.min(into.length - done, 1 << 30), position + done);
    if (n === 0) throw new RingrlError(`${path}: file ends before the tensor data it declares`);
    done += n;
  }
}

/** Little-endian raw bytes of `dtype` into float32 (this machine is little-endian, as ORT requires). */
function decode(raw: Buffer, dtype: string, out: Float32Array): void {
  const count = out.length;
  if (dtype === 'BF16') {
    const u16 = new Uint16Array(raw.buffer, raw.byteOffset, count);
    const u32 = new Uint32Array(out.buffer, out.byteOffset, count);
    for (let i = 0; i < count; i++) u32[i] = u16[i]! << 16;
  } else if (dtype === 'F16') {
    const table = halfTable();
    const u16 = new Uint16Array(raw.buffer, raw.byteOffset, count);
    for (let i = 0; i < count; i++) out[i] = table[u16[i]!]!;
  } else {
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    for (let i = 0; i < count; i++) out[i] = view.getFloat64(i * 8, true);
  }
}

let halves: Float32Array | undefined;
function halfTable(): Float32Array {
  if (halves) return halves;
  halves = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    halves[h] =
      exp === 0
        ? sign * 2 ** -14 * (frac / 1024)
        : exp === 31
          ? frac
            ? NaN
            : sign * Infinity
          : sign * 2 ** (exp - 15) * (1 + frac / 1024);
  }
  return halves;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 → bfloat16 bits, round to nearest, ties to even (NaN stays a quiet NaN). */
export function bf16Bits(x: number): number {
  f32[0] = x;
  const bits = u32[0]!;
  if ((bits & 0x7fffffff) > 0x7f800000) return ((bits >>> 16) | 0x40) & 0xffff;
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

/** float32 → IEEE half bits, round to nearest, ties to even; overflow to ±inf, subnormals kept. */
export function f16Bits(x: number): number {
  f32[0] = x;
  const bits = u32[0]!;
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  let mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign; // below half the smallest subnormal: ±0
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = mant & ((1 << shift) - 1);
    let m = mant >>> shift;
    if (rest > half || (rest === half && m & 1)) m++;
    return sign | m;
  }
  const m = mant >>> 13;
  const rest = mant & 0x1fff;
  let out = sign | (e << 10) | m;
  if (rest > 0x1000 || (rest === 0x1000 && m & 1)) out++; // a carry into the exponent is the right rounding
  return out;
}

function encode(data: Float32Array, dtype: StoredDtype): Uint8Array {
  if (dtype === 'F32') return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const bytes = scratchBytes(data.length * 2);
  const u16 = new Uint16Array(bytes.buffer, bytes.byteOffset, data.length);
  const bitsOf = dtype === 'BF16' ? bf16Bits : f16Bits;
  for (let i = 0; i < data.length; i++) u16[i] = bitsOf(data[i]!);
  return bytes;
}

/**
 * Write tensors atomically (temp file + rename), in the given order or sorted by name (as the
 * Python library does), as `dtype` (F32, BF16 or F16; the narrow ones round to nearest even).
 */
export function writeSafetensors(
  path: string,
  tensors: Map<string, NamedArray>,
  metadata: Record<string, string> = {},
  dtype: StoredDtype = 'F32',
  order?: string[],
): void {
  const names = order ?? [...tensors.keys()].sort(byCodeUnit);
  const header: Record<string, unknown> = { __metadata__: { format: 'pt', ...metadata } };
  let offset = 0;
  const size = elementSize[dtype]!;
  for (const name of names) {
    const t = tensors.get(name)!;
    header[name] = { dtype, shape: t.shape, data_offsets: [offset, offset + t.data.length * size] };
    offset += t.data.length * size;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8); // align data to 8 bytes
  const headerBytes = Buffer.from(json, 'utf8');
  const lengthBytes = Buffer.alloc(8);
  lengthBytes.writeBigUInt64LE(BigInt(headerBytes.length), 0);
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    writeAll(fd, lengthBytes);
    writeAll(fd, headerBytes);
    for (const name of names) writeAll(fd, encode(tensors.get(name)!.data, dtype));
  } catch (error) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw error;
  }
  closeSync(fd);
  renameSync(tmp, path);
}

function writeAll(fd: number, bytes: Uint8Array): void {
  for (let done = 0; done < bytes.length; ) done += writeSync(fd, bytes, done, Math.min(bytes.length - done, 1 << 30));
}
