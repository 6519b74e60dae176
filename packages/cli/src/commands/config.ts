/** `prfl config`: the merged configuration (defaults < --config files < --set), or every key with --keys. */
import type { ResolvedConfig } from '../config/resolve.js';
import { CONFIG_SCHEMA, describeExpected, formatValue } from '../config/schema.js';
import type { CommandContext } from '../context.js';

/** The schema as a Markdown table (the README's "Configuration keys" section is this text). */
export function configKeysMarkdown(): string {
  const rows = CONFIG_SCHEMA.map(
    (k) =>
      `| \`${k.key}\` | ${describeExpected(k).replace(/\|/g, '\\|')} | \`${formatValue(k.default)}\` | ${k.help.replace(/\|/g, '\\|')} |`,
  );
  return ['| key | accepts | default | meaning |', '|---|---|---|---|', ...rows].join('\n');
}

/** The schema as aligned text for a terminal. */
export function configKeysText(): string {
  const width = Math.max(...CONFIG_SCHEMA.map((k) => k.key.length));
  return `${CONFIG_SCHEMA.map(
    (k) => `${k.key.padEnd(width)}  ${formatValue(k.default).padEnd(14)}  ${describeExpected(k)}. ${k.help}`,
  ).join('\n')}\n`;
}

export async function configCommand(ctx: CommandContext, o: { keys: boolean }): Promise<void> {
  if (o.keys) {
    ctx.result(
      configKeysText(),
      CONFIG_SCHEMA.map((k) => ({ ...k, expected: describeExpected(k) })),
    );
    return;
  }
  const config: ResolvedConfig = await ctx.config();
  ctx.result(config.toYaml(), config.nested());
}
