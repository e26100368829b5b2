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
