export { loadSqlParser, type PgNode, type PgParseResult, type PgSqlParser, type PgStatement } from './libpg-query.js';
