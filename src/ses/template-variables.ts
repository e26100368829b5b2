// The rule for SES templates: SES inserts template values into the HtmlPart without escaping
// them, so the HtmlPart may only output `_html` variables, the escaped twins mailer adds to every
// TemplateData (src/ses/template-data.ts). `{{name}}` and `{{{name}}}` in an HtmlPart put the
// customer's raw value into the HTML; `{{name_html}}` is safe. Values that only steer a block
// (`{{#if name}}`) are not output and are allowed; SES's own data variables (`@index`) too.
import Handlebars from 'handlebars';

type Node = hbs.AST.Node;

export function htmlTwin(name: string): string {
  return `${name}_html`;
}

function isRawVariable(node: Node): node is hbs.AST.PathExpression {
  if (node.type !== 'PathExpression') return false;
  const path = node as hbs.AST.PathExpression;
  if (path.data) return false;
  const last = path.parts[path.parts.length - 1];
  return last === undefined || !last.endsWith('_html');
}

// The expressions whose values a mustache writes into the output: the path itself, or, when the
// path is a helper, its arguments.
function outputExpressions(node: hbs.AST.MustacheStatement | hbs.AST.SubExpression): Node[] {
  const args = [...node.params, ...(node.hash?.pairs ?? []).map((pair) => pair.value)];
  if (args.length === 0) return [node.path];
  return args.flatMap((arg) =>
    arg.type === 'SubExpression' ? outputExpressions(arg as hbs.AST.SubExpression) : [arg],
  );
}

function collect(program: hbs.AST.Program | undefined, found: Set<string>): void {
  for (const statement of program?.body ?? []) {
    if (statement.type === 'MustacheStatement') {
      for (const expression of outputExpressions(statement as hbs.AST.MustacheStatement)) {
        if (isRawVariable(expression)) found.add(expression.original);
      }
    } else if (statement.type === 'BlockStatement') {
      const block = statement as hbs.AST.BlockStatement;
      collect(block.program, found);
      collect(block.inverse, found);
    }
  }
}

/**
 * The variables an SES HtmlPart outputs without their `_html` twin, in order of first use.
 * Throws Handlebars' parse error when `html` is not a valid template.
 */
export function rawHtmlVariables(html: string): string[] {
  const found = new Set<string>();
  collect(Handlebars.parse(html), found);
  return [...found];
}

/**
 * The variables a template may use: what generate_campaign puts in each recipient's
 * template_data, plus greeting_name, which mailer derives when it renders or sends
 * (src/ses/template-data.ts). SES templates also get each one's escaped `_html` twin.
 */
export const TEMPLATE_VARIABLES: Readonly<Record<string, string>> = {
  name: "the customer's name as imported; may be empty",
  company: "the customer's company; may be empty",
  country: "the customer's country; may be empty",
  email: "the recipient's address",
  unsubscribe_url: "the recipient's one-click unsubscribe link for this campaign",
  greeting_name: 'the name, or "there" when the customer has none ("Hi {{greeting_name}},")',
};

// Helpers a template may call: Handlebars' built-ins, which SES's renderer has too.
const HELPERS = new Set(['if', 'unless', 'each', 'with', 'lookup', 'log']);

function isKnown(name: string, provider: 'ses' | 'internal'): boolean {
  if (name in TEMPLATE_VARIABLES) return true;
  return provider === 'ses' && name.endsWith('_html') && name.slice(0, -5) in TEMPLATE_VARIABLES;
}

function collectUnknown(node: Node | undefined, provider: 'ses' | 'internal', found: Set<string>) {
  if (!node) return;
  switch (node.type) {
    case 'Program':
      for (const statement of (node as hbs.AST.Program).body)
        collectUnknown(statement, provider, found);
      return;
    case 'MustacheStatement':
    case 'SubExpression':
    case 'BlockStatement': {
      const call = node as hbs.AST.MustacheStatement | hbs.AST.BlockStatement;
      const args = [...call.params, ...(call.hash?.pairs ?? []).map((pair) => pair.value)];
      const path = call.path as hbs.AST.PathExpression;
      const isHelper = node.type === 'BlockStatement' || args.length > 0;
      if (isHelper) {
        if (path.type === 'PathExpression' && !HELPERS.has(path.original)) found.add(path.original);
      } else {
        collectUnknown(call.path, provider, found);
      }
      for (const arg of args) collectUnknown(arg, provider, found);
      if (node.type === 'BlockStatement') {
        const block = node as hbs.AST.BlockStatement;
        collectUnknown(block.program, provider, found);
        collectUnknown(block.inverse, provider, found);
      }
      return;
    }
    case 'PathExpression': {
      const path = node as hbs.AST.PathExpression;
      // @index and friends, and `this` inside a block: not data of ours to check.
      if (path.data || path.parts.length === 0 || path.original.startsWith('this')) return;
      const head = path.parts[0] ?? '';
      if (!isKnown(head, provider)) found.add(path.original);
      return;
    }
    default:
      return;
  }
}

/**
 * The variables (and helpers) a template uses that mailer never provides, in order of first
 * use: `{{frist_name}}` would render empty for everyone. An `_html` twin is known for `ses`
 * templates only (internal templates escape by themselves and get no twins). Throws Handlebars'
 * parse error when `source` is not a valid template.
 */
export function unknownVariables(source: string, provider: 'ses' | 'internal'): string[] {
  const found = new Set<string>();
  collectUnknown(Handlebars.parse(source), provider, found);
  return [...found];
}

/** The known variable names, for messages: "name, company, ...". */
export function knownVariableList(provider: 'ses' | 'internal'): string {
  const names = Object.keys(TEMPLATE_VARIABLES);
  return provider === 'ses' ? `${names.join(', ')} (and their _html twins)` : names.join(', ');
}
