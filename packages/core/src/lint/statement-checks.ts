import type { PgNode } from '../sql-parser.js';
import type { LintRuleName } from './lint-rules.js';
import {
  calledFunctions,
  fieldsOf,
  list,
  nodeOf,
  optionNames,
  relationName,
  stringValue,
  text,
  typeOf,
} from './parse-tree.js';

/** What a check found, before the engine adds the file, the place and the severity. */
export interface Hit {
  rule: LintRuleName;
  message: string;
}

/** What the checks know about the set so far (files in version order, statements in file order). */
export interface SetState {
  /** `table.column` → its declared type, from CREATE TABLE, ADD COLUMN and ALTER TYPE. */
  columnTypes: Map<string, { name: string; mods: number[] }>;
  /** `table:constraint` → the column a CHECK (column IS NOT NULL) covers, and whether it is validated. */
  notNullChecks: Map<string, { column: string; validated: boolean }>;
}

/** What the checks know about the file being linted. */
export interface FileState {
  transactional: boolean;
  /** Tables created in this file: they hold no data yet, so locks and rewrites on them are harmless. */
  createdHere: Set<string>;
  /** The file changes the schema (any statement other than plain DML). */
  hasDdl: boolean;
}

/** Functions that give another value on each row: as a default they make ADD COLUMN rewrite the table. */
const VOLATILE = new Set([
  'random',
  'gen_random_uuid',
  'uuid_generate_v1',
  'uuid_generate_v1mc',
  'uuid_generate_v4',
  'uuidv4',
  'uuidv7',
  'clock_timestamp',
  'timeofday',
  'nextval',
  'txid_current',
]);
const SERIAL = new Set(['serial', 'serial4', 'bigserial', 'serial8', 'smallserial', 'serial2']);
const NARROW_KEY = new Set(['int2', 'int4', 'serial', 'serial4', 'smallserial', 'serial2']);

/** The checks of one statement. `set` is updated with what the statement declares. */
export function checkStatement(tree: PgNode, file: FileState, set: SetState): Hit[] {
  const typed = nodeOf(tree);
  if (!typed) return [];
  const [type, stmt] = typed;
  const existing = (rangeVar: unknown): boolean => !file.createdHere.has(relationName(rangeVar));
  const hits: Hit[] = [];
  const hit = (rule: LintRuleName, message: string): void => {
    hits.push({ rule, message });
  };
  switch (type) {
    case 'CreateStmt': {
      const table = relationName(stmt.relation);
      file.createdHere.add(table);
      const columns = list(stmt.tableElts)
        .map((e) => fieldsOf(e, 'ColumnDef'))
        .filter((c) => c !== undefined);
      for (const column of columns) {
        const name = text(column.colname) ?? '?';
        set.columnTypes.set(`${table}.${name}`, typeOf(column.typeName));
        checkColumnType(table, column, hit);
        if (constraintsOf(column).some((c) => c.contype === 'CONSTR_PRIMARY')) checkKeyType(table, name, set, hit);
      }
      for (const element of list(stmt.tableElts)) {
        const constraint = fieldsOf(element, 'Constraint');
        if (constraint?.contype === 'CONSTR_PRIMARY') {
          for (const key of list(constraint.keys).map(stringValue)) checkKeyType(table, key ?? '?', set, hit);
        }
      }
      break;
    }
    case 'IndexStmt':
      if (stmt.concurrent === true) {
        if (file.transactional) hit('concurrently-in-transaction', 'CREATE INDEX CONCURRENTLY in a transactional file');
      } else if (existing(stmt.relation)) {
        hit(
          'index-without-concurrently',
          `CREATE INDEX on existing table ${relationName(stmt.relation)} without CONCURRENTLY blocks its writes`,
        );
      }
      break;
    case 'ReindexStmt':
      if (optionNames(stmt.params).includes('concurrently')) {
        if (file.transactional) hit('concurrently-in-transaction', 'REINDEX CONCURRENTLY in a transactional file');
      } else {
        hit('reindex-without-concurrently', 'REINDEX without CONCURRENTLY blocks writes while it runs');
      }
      break;
    case 'DropStmt':
      if (stmt.concurrent === true && file.transactional) {
        hit('concurrently-in-transaction', 'DROP INDEX CONCURRENTLY in a transactional file');
      }
      if (stmt.removeType === 'OBJECT_TABLE') {
        for (const object of list(stmt.objects)) {
          const name = list(fieldsOf(object, 'List')?.items).map(stringValue).join('.');
          if (!file.createdHere.has(name)) hit('drop-table', `DROP TABLE ${name}`);
        }
      }
      break;
    case 'AlterTableStmt':
      if (stmt.objtype === 'OBJECT_TABLE') alterTable(stmt, existing(stmt.relation), file, set, hit);
      break;
    case 'RenameStmt':
      if (stmt.renameType === 'OBJECT_COLUMN' && existing(stmt.relation)) {
        hit('rename-column', `RENAME COLUMN ${relationName(stmt.relation)}.${text(stmt.subname) ?? '?'}`);
      } else if (stmt.renameType === 'OBJECT_TABLE' && existing(stmt.relation)) {
        hit('rename-table', `RENAME TABLE ${relationName(stmt.relation)} TO ${text(stmt.newname) ?? '?'}`);
      }
      break;
    case 'VacuumStmt':
      if (stmt.is_vacuumcmd === true && optionNames(stmt.options).includes('full')) hit('vacuum-full', 'VACUUM FULL');
      if (stmt.is_vacuumcmd === true && file.transactional) {
        hit('concurrently-in-transaction', 'VACUUM in a transactional file');
      }
      break;
    case 'ClusterStmt':
      hit('cluster', `CLUSTER ${stmt.relation ? relationName(stmt.relation) : '(every clustered table)'}`);
      break;
    case 'LockStmt':
      hit(
        'lock-table',
        `LOCK TABLE ${list(stmt.relations)
          .map((r) => relationName(fieldsOf(r, 'RangeVar')))
          .join(', ')}`,
      );
      break;
    case 'UpdateStmt':
    case 'DeleteStmt':
      if (file.transactional && file.hasDdl && stmt.whereClause === undefined && existing(stmt.relation)) {
        hit(
          'unbounded-dml-in-ddl-transaction',
          `${type === 'UpdateStmt' ? 'UPDATE' : 'DELETE'} of every row of ${relationName(stmt.relation)} in a file that also changes the schema`,
        );
      }
      break;
  }
  return hits;
}

function alterTable(
  stmt: PgNode,
  existing: boolean,
  file: FileState,
  set: SetState,
  hit: (rule: LintRuleName, message: string) => void,
): void {
  const table = relationName(stmt.relation);
  for (const item of list(stmt.cmds)) {
    const cmd = fieldsOf(item, 'AlterTableCmd');
    if (!cmd) continue;
    const column = text(cmd.name) ?? '?';
    switch (cmd.subtype) {
      case 'AT_AddColumn': {
        const def = fieldsOf(cmd.def, 'ColumnDef') ?? {};
        const name = text(def.colname) ?? '?';
        const type = typeOf(def.typeName);
        set.columnTypes.set(`${table}.${name}`, type);
        checkColumnType(table, def, hit);
        const constraints = constraintsOf(def);
        if (constraints.some((c) => c.contype === 'CONSTR_PRIMARY')) checkKeyType(table, name, set, hit);
        if (!existing) break;
        const volatile = constraints
          .filter((c) => c.contype === 'CONSTR_DEFAULT')
          .flatMap((c) => calledFunctions(c.raw_expr))
          .find((f) => VOLATILE.has(f));
        if (volatile)
          hit('add-column-volatile-default', `ADD COLUMN ${table}.${name} with volatile default ${volatile}()`);
        else if (SERIAL.has(type.name)) hit('add-column-volatile-default', `ADD COLUMN ${table}.${name} ${type.name}`);
        else if (constraints.some((c) => c.contype === 'CONSTR_IDENTITY' || c.contype === 'CONSTR_GENERATED')) {
          hit('add-column-volatile-default', `ADD COLUMN ${table}.${name} as an identity or generated column`);
        }
        if (constraints.some((c) => c.contype === 'CONSTR_UNIQUE' || c.contype === 'CONSTR_PRIMARY')) {
          hit('unique-without-using-index', `ADD COLUMN ${table}.${name} with a UNIQUE or PRIMARY KEY constraint`);
        }
        if (constraints.some((c) => c.contype === 'CONSTR_FOREIGN' && c.skip_validation !== true)) {
          hit('constraint-without-not-valid', `ADD COLUMN ${table}.${name} with REFERENCES validates every row`);
        }
        break;
      }
      case 'AT_AddConstraint': {
        const constraint = fieldsOf(cmd.def, 'Constraint') ?? {};
        const name = text(constraint.conname);
        const validated = constraint.skip_validation !== true;
        if (constraint.contype === 'CONSTR_CHECK') {
          const covered = notNullColumn(constraint.raw_expr);
          if (covered && name) set.notNullChecks.set(`${table}:${name}`, { column: covered, validated });
        }
        if (!existing) break;
        if ((constraint.contype === 'CONSTR_FOREIGN' || constraint.contype === 'CONSTR_CHECK') && validated) {
          const kind = constraint.contype === 'CONSTR_FOREIGN' ? 'FOREIGN KEY' : 'CHECK';
          hit('constraint-without-not-valid', `ADD ${kind}${name ? ` ${name}` : ''} on ${table} without NOT VALID`);
        }
        if (
          (constraint.contype === 'CONSTR_UNIQUE' || constraint.contype === 'CONSTR_PRIMARY') &&
          constraint.indexname === undefined
        ) {
          const kind = constraint.contype === 'CONSTR_UNIQUE' ? 'UNIQUE' : 'PRIMARY KEY';
          hit(
            'unique-without-using-index',
            `ADD ${kind} on ${table} without USING INDEX builds the index under ACCESS EXCLUSIVE`,
          );
        }
        break;
      }
      case 'AT_ValidateConstraint': {
        const check = set.notNullChecks.get(`${table}:${column}`);
        if (check) check.validated = true;
        break;
      }
      case 'AT_SetNotNull': {
        const proven = [...set.notNullChecks.entries()].some(
          ([key, c]) => key.startsWith(`${table}:`) && c.column === column && c.validated,
        );
        if (existing && !proven) {
          hit(
            'set-not-null-without-check',
            `SET NOT NULL on ${table}.${column} without a validated CHECK (${column} IS NOT NULL)`,
          );
        }
        break;
      }
      case 'AT_AlterColumnType': {
        const def = fieldsOf(cmd.def, 'ColumnDef') ?? {};
        const to = typeOf(def.typeName);
        const from = set.columnTypes.get(`${table}.${column}`);
        set.columnTypes.set(`${table}.${column}`, to);
        checkColumnType(table, { ...def, colname: column }, hit);
        if (existing && (def.raw_default !== undefined || !isBinaryCompatible(from, to))) {
          hit(
            'column-type-rewrite',
            `ALTER COLUMN ${table}.${column} TYPE ${to.name}${to.mods.length ? `(${to.mods.join(',')})` : ''} rewrites the table`,
          );
        }
        break;
      }
      case 'AT_DropColumn':
        if (existing) hit('drop-column', `DROP COLUMN ${table}.${column}`);
        break;
      case 'AT_DetachPartition':
        if (fieldsOf(cmd.def, 'PartitionCmd')?.concurrent === true && file.transactional) {
          hit('concurrently-in-transaction', 'DETACH PARTITION CONCURRENTLY in a transactional file');
        }
        break;
    }
  }
}

export function constraintsOf(column: PgNode): PgNode[] {
  return list(column.constraints)
    .map((c) => fieldsOf(c, 'Constraint'))
    .filter((c) => c !== undefined);
}

function checkColumnType(table: string, column: PgNode, hit: (rule: LintRuleName, message: string) => void): void {
  const type = typeOf(column.typeName);
  if (type.name === 'bpchar' || (type.name === 'varchar' && type.mods.length > 0)) {
    const written = type.name === 'bpchar' ? 'char' : 'varchar';
    hit('prefer-text', `${table}.${text(column.colname) ?? '?'} is ${written}(${type.mods.join(',') || 1})`);
  }
}

function checkKeyType(
  table: string,
  column: string,
  set: SetState,
  hit: (rule: LintRuleName, message: string) => void,
): void {
  const type = set.columnTypes.get(`${table}.${column}`);
  if (type && NARROW_KEY.has(type.name)) hit('int-primary-key', `primary key ${table}.${column} is ${type.name}`);
}

/** The column of `CHECK (column IS NOT NULL)`. */
function notNullColumn(expr: unknown): string | undefined {
  const test = fieldsOf(expr, 'NullTest');
  if (test?.nulltesttype !== 'IS_NOT_NULL') return undefined;
  const fields = list(fieldsOf(test.arg, 'ColumnRef')?.fields);
  return fields.length === 1 ? stringValue(fields[0]) : undefined;
}

/** Type changes PostgreSQL makes without a rewrite: to text or unbounded varchar, or a larger limit. */
function isBinaryCompatible(
  from: { name: string; mods: number[] } | undefined,
  to: { name: string; mods: number[] },
): boolean {
  if (to.name === 'text' || (to.name === 'varchar' && to.mods.length === 0)) {
    return from === undefined || from.name === 'varchar' || from.name === 'text';
  }
  if (!from || from.name !== to.name) return false;
  if (to.name === 'varchar') return from.mods.length > 0 && to.mods[0]! >= from.mods[0]!;
  if (to.name === 'numeric') {
    return (
      from.mods.length > 0 &&
      to.mods.length > 0 &&
      to.mods[0]! >= from.mods[0]! &&
      (to.mods[1] ?? 0) === (from.mods[1] ?? 0)
    );
  }
  return false;
}
