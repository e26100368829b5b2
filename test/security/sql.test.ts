// SQL takes data only as parameters. A static check over the application's source (src/, tasks/):
// a template literal that looks like SQL may interpolate `${...}` only where a reviewer has agreed
// it cannot carry data (an escaped identifier, a name from a constant table), listed below with why.
// And over the migrations: dynamic SQL (EXECUTE) is built with format() and %I / %L, or %s of a
// value whose text form is already quoted (regprocedure, regclass). Adding to either list is a
// decision to review, not a formality.
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import test from 'ava';

const root = join(import.meta.dirname, '..', '..');

const ALLOWED_INTERPOLATIONS: Record<string, string> = {
  'src/db/embedded.ts: client.escapeIdentifier(database)': 'an identifier, escaped by pg',
  'src/db/databases.ts: ident(name)': 'a database name, escaped by pg.escapeIdentifier',
  'src/db/databases.ts: template': 'an escaped template name (ident) or nothing',
  'src/queries/operations.ts: fn': 'a function name from the constant CAMPAIGN_FUNCTIONS table',
  'src/queries/operations.ts: where': 'a constant WHERE fragment whose values are $1 and $2',
};

// %s in these EXECUTEs formats a regprocedure or regclass, whose text form is quoted already.
const ALLOWED_EXECUTE_S = [
  "execute format('revoke all on function %s from public', v_function);",
  "execute format('grant execute on function %s to mailer_operator', v_function);",
  "execute format('drop policy if exists mailer_app_queue on %s', v_table);",
  "execute format('create policy mailer_app_queue on %s for all to mailer_app using (true) with check (true)',",
];

const SQL_SHAPE =
  /\b(select\b[\s\S]*\bfrom\b|select\s+(public|graphile_worker)\.|insert\s+into|update\s+(public|graphile_worker)\.|delete\s+from|create\s+(database|table|role|index|schema)|drop\s+(database|table|role|schema)|grant\s+\w+|alter\s+(table|role|database)|copy\s+\S+\s+(from|to))\b/i;

async function files(dir: string, extension: string): Promise<string[]> {
  const entries = await readdir(join(root, dir), { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile() && e.name.endsWith(extension))
    .map((e) => relative(root, join(e.parentPath, e.name)));
}

/** `${...}` expressions of every template literal (no nesting: none of ours nests backticks). */
function interpolatedSql(source: string): string[] {
  const found: string[] = [];
  for (const literal of source.matchAll(/`((?:\\.|[^`\\])*)`/g)) {
    const body = literal[1] ?? '';
    if (!body.includes('${') || !SQL_SHAPE.test(body.replace(/\$\{[^}]*\}/g, 'x'))) continue;
    for (const expression of body.matchAll(/\$\{([^}]*)\}/g))
      found.push((expression[1] ?? '').trim());
  }
  return found;
}

test('application SQL interpolates nothing but reviewed identifiers', async (t) => {
  const sources = [...(await files('src', '.ts')), ...(await files('tasks', '.ts'))];
  t.true(sources.length > 30, `${sources.length} files scanned`);
  const unreviewed: string[] = [];
  const seen = new Set<string>();
  for (const file of sources) {
    for (const expression of interpolatedSql(await readFile(join(root, file), 'utf8'))) {
      const key = `${file}: ${expression}`;
      seen.add(key);
      if (!(key in ALLOWED_INTERPOLATIONS) && !unreviewed.includes(key)) unreviewed.push(key);
    }
  }
  t.deepEqual(unreviewed, [], 'interpolated into SQL: use $n parameters, or review and list it');
  t.log(`reviewed interpolations still in use: ${[...seen].join('; ') || 'none'}`);
});

test('dynamic SQL in migrations quotes what it formats', async (t) => {
  const migrations = await files('migrations', '.sql');
  const problems: string[] = [];
  for (const file of migrations) {
    const lines = (await readFile(join(root, file), 'utf8')).split('\n');
    lines.forEach((line, i) => {
      const code = line.replace(/--.*$/, '').trim();
      if (!/\bexecute\b/i.test(code) || /\bexecute\s+(function|procedure)\b/i.test(code)) return;
      const where = `${file}:${i + 1}: ${code}`;
      if (!/\bexecute\s+format\(/i.test(code)) problems.push(`${where} (not format())`);
      else if (/%s/.test(code) && !ALLOWED_EXECUTE_S.includes(code)) problems.push(`${where} (%s)`);
    });
  }
  t.deepEqual(problems, []);
});

test('the check itself finds an interpolated value', (t) => {
  const dollar = '$';
  t.deepEqual(
    interpolatedSql(`db.query(\`select * from customers where name = ${dollar}{name}\`)`),
    ['name'],
  );
  t.deepEqual(interpolatedSql(`logger.info(\`sent ${dollar}{n} emails\`)`), []);
});
