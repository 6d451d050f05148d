// The command line's shared pieces on commander: subcommands that report usage errors as one line with exit
// status 2, and the value parsers of their options.
import { type Command, type CommanderError, InvalidArgumentError } from 'commander';

/** A mistake in how the command was called (exit status 2), found after the options were parsed. */
export class UsageError extends Error {}

/** Commander's exits that are not errors: --help and --version (a group called without its subcommand is one). */
export const isCleanExit = (e: CommanderError) => ['commander.helpDisplayed', 'commander.version'].includes(e.code);

/** An action whose result is the exit status. */
export const action =
  <A extends unknown[]>(fn: (...args: A) => Promise<number> | number) =>
  async (...args: A) => {
    process.exitCode = await fn(...args);
  };

/** The full name of a (sub)command: 'swav eval linear'. */
export function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/**
 * `parent.command(name)` that writes its usage errors as one line, naming the command and where its help is:
 * commander's own messages span two lines ("error: unknown option '--epoch'\n(Did you mean --epochs?)").
 */
export function subcommand(parent: Command, name: string, description: string): Command {
  const cmd = parent.command(name).description(description).exitOverride();
  cmd.configureOutput({
    outputError: (message, write) =>
      write(
        `${commandPath(cmd)}: ${message
          .trim()
          .replace(/^error: /, '')
          .replace(/\n+/g, ' ')}` + ` (${commandPath(cmd)} --help lists the options)\n`,
      ),
  });
  return cmd;
}

/** Help text after the options: examples, one per line. */
export const examples = (...lines: string[]) => `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`;

export function int(raw: string): number {
  const v = Number(raw);
  if (raw.trim() === '' || !Number.isInteger(v)) throw new InvalidArgumentError('expected an integer.');
  return v;
}

export function num(raw: string): number {
  const v = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(v)) throw new InvalidArgumentError('expected a number.');
  return v;
}

/** '20,200' -> [20, 200]: positive numbers separated by commas. */
export function positiveList(raw: string): number[] {
  const vs = raw.split(',').map(Number);
  if (!vs.every((v) => v > 0)) throw new InvalidArgumentError('expected positive numbers separated by commas.');
  return vs;
}

/** '0' | '1' (also false/true, no/yes), as the PyTorch peers' flags. */
export function bool01(raw: string): boolean {
  if (['1', 'true', 'yes'].includes(raw)) return true;
  if (['0', 'false', 'no'].includes(raw)) return false;
  throw new InvalidArgumentError('expected 0 or 1.');
}

/** '2x224,6x96' -> [{n: 2, size: 224}, {n: 6, size: 96}]. */
export function crops(raw: string): { n: number; size: number }[] {
  return raw.split(',').map((part) => {
    const m = /^\s*(\d+)x(\d+)\s*$/.exec(part);
    if (!m) throw new InvalidArgumentError(`'${part}' is not NxSIZE (e.g. 2x224,6x96).`);
    return { n: Number(m[1]), size: Number(m[2]) };
  });
}
