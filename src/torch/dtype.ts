// Element types, devices and memory formats, named as PyTorch names them (in camelCase where it differs).

export type DType = 'float32' | 'float64' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';
export type MemoryFormat = 'contiguous' | 'channelsLast' | 'preserve' | 'channelsLast3d';
/** 'cpu', 'cuda' or 'cuda:N'. */
export type Device = string;

export const float32: DType = 'float32';
export const float = float32;
export const float64: DType = 'float64';
export const double = float64;
export const float16: DType = 'float16';
export const half = float16;
export const bfloat16: DType = 'bfloat16';
export const int64: DType = 'int64';
export const long = int64;
export const int32: DType = 'int32';
export const int16: DType = 'int16';
export const int8: DType = 'int8';
export const uint8: DType = 'uint8';
export const bool: DType = 'bool';
export const channelsLast: MemoryFormat = 'channelsLast';
export const contiguousFormat: MemoryFormat = 'contiguous';
export const preserveFormat: MemoryFormat = 'preserve';

export const DTYPES: readonly DType[] = ['float32', 'float64', 'float16', 'bfloat16', 'int64', 'int32', 'int16', 'int8', 'uint8', 'bool'];

export function isDType(s: unknown): s is DType {
  return typeof s === 'string' && (DTYPES as readonly string[]).includes(s);
}

export const itemSize: Record<DType, number> = {
  float32: 4,
  float64: 8,
  float16: 2,
  bfloat16: 2,
  int64: 8,
  int32: 4,
  int16: 2,
  int8: 1,
  uint8: 1,
  bool: 1,
};

export function isFloatingPoint(d: DType): boolean {
  return d === 'float32' || d === 'float64' || d === 'float16' || d === 'bfloat16';
}

export type TypedArray = Float32Array | Float64Array | BigInt64Array | Int32Array | Int16Array | Int8Array | Uint8Array | Uint16Array;

/** The dtype a TypedArray's elements hold (Uint16Array: raw half or bfloat16 bits, so it needs a dtype). */
export function dtypeOfArray(a: TypedArray): DType | undefined {
  if (a instanceof Float32Array) return 'float32';
  if (a instanceof Float64Array) return 'float64';
  if (a instanceof BigInt64Array) return 'int64';
  if (a instanceof Int32Array) return 'int32';
  if (a instanceof Int16Array) return 'int16';
  if (a instanceof Int8Array) return 'int8';
  if (a instanceof Uint8Array) return 'uint8';
  return undefined;
}

/** A view of `buf` as the TypedArray natural for `dtype` (half types: raw 16-bit words). */
export function viewAs(buf: ArrayBuffer, dtype: DType): TypedArray {
  switch (dtype) {
    case 'float32':
      return new Float32Array(buf);
    case 'float64':
      return new Float64Array(buf);
    case 'int64':
      return new BigInt64Array(buf);
    case 'int32':
      return new Int32Array(buf);
    case 'int16':
      return new Int16Array(buf);
    case 'int8':
      return new Int8Array(buf);
    case 'uint8':
    case 'bool':
      return new Uint8Array(buf);
    case 'float16':
    case 'bfloat16':
      return new Uint16Array(buf);
  }
}
