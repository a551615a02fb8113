import type { PgNode } from '../sql-parser.js';

/*
 * Reading libpg_query's JSON parse trees. A node is `{ TypeName: { ...fields } }`; fields that
 * hold their default (false, 0, empty) are left out, so every read tolerates a missing field.
 */

/** The node's type and fields: `{ IndexStmt: {...} }` → `['IndexStmt', {...}]`. */
export function nodeOf(node: unknown): [string, PgNode] | undefined {
  if (typeof node !== 'object' || node === null) return undefined;
  const keys = Object.keys(node);
  if (keys.length !== 1) return undefined;
  const body = (node as PgNode)[keys[0]!];
  return typeof body === 'object' && body !== null ? [keys[0]!, body as PgNode] : undefined;
}

/** The fields of `node` when it is of type `type`. */
export function fieldsOf(node: unknown, type: string): PgNode | undefined {
  const typed = nodeOf(node);
  return typed?.[0] === type ? typed[1] : undefined;
}

export function list(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

export function text(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/** The value of a `String` node. */
export function stringValue(node: unknown): string | undefined {
  return text(fieldsOf(node, 'String')?.sval);
}

/** A relation (`RangeVar`) as written, lower-cased the way PostgreSQL folds it: `schema.name` or `name`. */
export function relationName(rangeVar: unknown): string {
  const fields = (rangeVar ?? {}) as PgNode;
  const name = text(fields.relname) ?? '?';
  const schema = text(fields.schemaname);
  return schema ? `${schema}.${name}` : name;
}

/** A type's last name part and its modifiers: `varchar(10)` → `{ name: 'varchar', mods: [10] }`. */
export function typeOf(typeName: unknown): { name: string; mods: number[]; array: boolean } {
  const fields = (typeName ?? {}) as PgNode;
  const names = list(fields.names).map(stringValue);
  const mods = list(fields.typmods).map((m) => Number(constValue(m) ?? NaN));
  return { name: names.at(-1) ?? '?', mods, array: list(fields.arrayBounds).length > 0 };
}

/** The value of an `A_Const`: a string, a number (0 when libpg_query left it out), or undefined. */
export function constValue(node: unknown): string | number | undefined {
  const c = fieldsOf(node, 'A_Const');
  if (!c) return undefined;
  if (c.sval) return text((c.sval as PgNode).sval) ?? '';
  if (c.ival) return Number((c.ival as PgNode).ival ?? 0);
  if (c.fval) return Number((c.fval as PgNode).fval);
  return undefined;
}

/** Names of the options of a statement (`DefElem` list): `VACUUM (FULL, ANALYZE)` → full, analyze. */
export function optionNames(options: unknown): string[] {
  return list(options)
    .map((o) => text(fieldsOf(o, 'DefElem')?.defname))
    .filter((n): n is string => n !== undefined);
}

/** Every `FuncCall` name in an expression tree (the last part: `pg_catalog.random` → random). */
export function calledFunctions(node: unknown, out: string[] = []): string[] {
  if (Array.isArray(node)) {
    for (const item of node) calledFunctions(item, out);
  } else if (typeof node === 'object' && node !== null) {
    const call = fieldsOf(node, 'FuncCall');
    if (call) {
      const name = list(call.funcname).map(stringValue).at(-1);
      if (name) out.push(name.toLowerCase());
    }
    for (const value of Object.values(node)) calledFunctions(value, out);
  }
  return out;
}
