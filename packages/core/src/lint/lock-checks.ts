import type { PgNode } from '../sql-parser.js';
import { constValue, fieldsOf, list, nodeOf, optionNames, relationName, stringValue, text } from './parse-tree.js';
import { constraintsOf, type FileState } from './statement-checks.js';

/** The lock_timeout a `SET [LOCAL] lock_timeout` sets, in ms (0: none). Undefined for other statements. */
export function lockTimeoutSet(tree: PgNode): number | undefined {
  const set = fieldsOf(tree, 'VariableSetStmt');
  if (!set || text(set.name) !== 'lock_timeout') return undefined;
  if (set.kind !== 'VAR_SET_VALUE') return 0;
  const value = constValue(list(set.args)[0]);
  if (typeof value === 'number') return value;
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|min|h)?\s*$/.exec(value ?? '');
  if (!match) return undefined;
  const factor = { ms: 1, s: 1000, min: 60_000, h: 3_600_000 }[match[2] ?? 'ms']!;
  return Number(match[1]) * factor;
}

/** True for a statement that takes a lock blocking writes (or reads) on a table that already holds data. */
export function takesStrongLock(tree: PgNode, file: FileState): boolean {
  const typed = nodeOf(tree);
  if (!typed) return false;
  const [type, stmt] = typed;
  const existing = (rangeVar: unknown): boolean => !file.createdHere.has(relationName(rangeVar));
  switch (type) {
    case 'AlterTableStmt':
      return (
        existing(stmt.relation) &&
        list(stmt.cmds).some((c) => fieldsOf(c, 'AlterTableCmd')?.subtype !== 'AT_ValidateConstraint')
      );
    case 'IndexStmt':
      return stmt.concurrent !== true && existing(stmt.relation);
    case 'ReindexStmt':
      return !optionNames(stmt.params).includes('concurrently');
    case 'DropStmt':
      if (stmt.concurrent === true) return false;
      if (stmt.removeType === 'OBJECT_INDEX') return true;
      return (
        stmt.removeType === 'OBJECT_TABLE' &&
        list(stmt.objects).some(
          (o) => !file.createdHere.has(list(fieldsOf(o, 'List')?.items).map(stringValue).join('.')),
        )
      );
    case 'CreateStmt':
      // A foreign key locks the referenced table (SHARE ROW EXCLUSIVE) even when its own table is new.
      return list(stmt.tableElts).some((e) => references(e).some((t) => existing(t)));
    case 'RenameStmt':
    case 'TruncateStmt':
    case 'LockStmt':
    case 'ClusterStmt':
      return true;
    case 'CreateTrigStmt':
    case 'RuleStmt':
      return existing(stmt.relation);
    case 'VacuumStmt':
      return optionNames(stmt.options).includes('full');
    default:
      return false;
  }
}

/** Tables a table element (a column with REFERENCES, or a FOREIGN KEY) refers to. */
function references(element: unknown): unknown[] {
  const constraint = fieldsOf(element, 'Constraint');
  if (constraint) return constraint.contype === 'CONSTR_FOREIGN' ? [constraint.pktable] : [];
  const column = fieldsOf(element, 'ColumnDef');
  return column
    ? constraintsOf(column)
        .filter((c) => c.contype === 'CONSTR_FOREIGN')
        .map((c) => c.pktable)
    : [];
}
