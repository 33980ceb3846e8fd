// The config schema as plain data (JSON Schema of the *input*, via zod's toJSONSchema): what
// error messages use to list valid keys, and what docs/config.md is generated from.
import { z } from 'zod';
import { configSchema } from './schema.ts';

export interface SchemaNode {
  description?: string;
  type?: string | string[];
  properties?: Record<string, SchemaNode>;
  additionalProperties?: SchemaNode | boolean;
  items?: SchemaNode;
  enum?: unknown[];
  anyOf?: SchemaNode[];
  default?: unknown;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minLength?: number;
  pattern?: string;
}

let cached: SchemaNode | undefined;

/** The input JSON Schema of the whole config (computed once). */
export function describeSchema(): SchemaNode {
  cached ??= z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as SchemaNode;
  return cached;
}

/** An object with named keys is a section; one with free keys (a z.record, e.g. template kwargs) is a field. */
export const isSection = (node: SchemaNode) => node.type === 'object' && node.properties !== undefined;

/** Every leaf field as [dotted key path, node], in schema order. */
export function leafFields(node: SchemaNode = describeSchema(), prefix = ''): [string, SchemaNode][] {
  return Object.entries(node.properties ?? {}).flatMap(([key, child]) => {
    const path = prefix ? `${prefix}.${key}` : key;
    return isSection(child) ? leafFields(child, path) : [[path, child] as [string, SchemaNode]];
  });
}

/** Every section (object) as [dotted key path, node], in schema order. */
export function sections(node: SchemaNode = describeSchema(), prefix = ''): [string, SchemaNode][] {
  return Object.entries(node.properties ?? {}).flatMap(([key, child]) => {
    const path = prefix ? `${prefix}.${key}` : key;
    return isSection(child) ? [[path, child] as [string, SchemaNode], ...sections(child, path)] : [];
  });
}

/** A field's type and range in words, e.g. "integer ≥ 1", "one of: constant, cosine". */
export function typeInWords(node: SchemaNode): string {
  if (node.enum) return `one of: ${node.enum.map(String).join(', ')}`;
  if (node.anyOf) return node.anyOf.map(typeInWords).join(' or ');
  if (node.type === 'array') return `list of ${node.items ? typeInWords(node.items) : 'values'}`;
  if (node.type === 'object' && typeof node.additionalProperties === 'object')
    return `mapping of names to ${typeInWords(node.additionalProperties)}`;
  // z.int() adds the safe-integer range; it is noise in docs.
  const big = (v: number | undefined) => v === undefined || Math.abs(v) >= Number.MAX_SAFE_INTEGER;
  const bounds = [
    !big(node.minimum) ? `≥ ${node.minimum}` : '',
    node.exclusiveMinimum !== undefined ? `> ${node.exclusiveMinimum}` : '',
    !big(node.maximum) ? `≤ ${node.maximum}` : '',
    node.exclusiveMaximum !== undefined ? `< ${node.exclusiveMaximum}` : '',
  ].filter(Boolean);
  const base =
    node.type === 'integer'
      ? 'integer'
      : node.type === 'number'
        ? 'number'
        : node.type === 'boolean'
          ? 'boolean'
          : node.type === 'string'
            ? 'string'
            : Array.isArray(node.type)
              ? node.type.join(' or ')
              : String(node.type ?? 'any');
  return [base, bounds.join(', ')].filter(Boolean).join(' ');
}
