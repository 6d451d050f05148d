#!/usr/bin/env node
// The `swav` command line, on commander: each module adds its subcommands; usage errors are one line with exit
// status 2, other errors one line with status 1 (the stack trace with SWAV_DEBUG=1).
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { UsageError, isCleanExit } from './options.js';

const { version } = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };

/** The commands, imported here so that a missing addon is one line of error, not a stack trace at import time. */
async function program(): Promise<Command> {
  const [
    { trainCommand },
    { launchCommand },
    { evalCommand },
    { extractCommand },
    { exportCommand },
    { convertCommand, hubCommand },
    { benchCommand },
    { serveCommand },
  ] = await Promise.all([
    import('./train.js'),
    import('./launch.js'),
    import('./eval.js'),
    import('./extract.js'),
    import('./export.js'),
    import('./files.js'),
    import('./bench.js'),
    import('./serve.js'),
  ]);
  const swav = new Command('swav')
    .description(
      'SwAV, DeepCluster-v2 and SeLa-v2 self-supervised learning over libtorch: pretrain, evaluate, extract, export, convert, serve',
    )
    .version(version, '-V, --version', 'the version of swav')
    .exitOverride()
    .showSuggestionAfterError()
    .enablePositionalOptions() // launch passes the options after its command on
    .configureOutput({
      outputError: (message, write) =>
        write(
          `swav: ${message
            .trim()
            .replace(/^error: /, '')
            .replace(/\n+/g, ' ')} (swav --help lists the commands)\n`,
        ),
    });
  for (const add of [
    trainCommand,
    launchCommand,
    evalCommand,
    extractCommand,
    exportCommand,
    convertCommand,
    hubCommand,
    benchCommand,
    serveCommand,
  ])
    add(swav);
  return swav;
}

// Output piped into a reader that stops early (`swav train --help | head`): end quietly, as Unix tools do.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

async function main(argv: string[]): Promise<void> {
  const swav = await program();
  if (argv.length === 0) {
    swav.outputHelp({ error: true });
    process.exitCode = 2;
    return;
  }
  await swav.parseAsync(argv, { from: 'user' }); // each action sets process.exitCode
}

main(process.argv.slice(2)).catch((e: unknown) => {
  if (e instanceof CommanderError) {
    process.exitCode = isCleanExit(e) ? 0 : 2; // commander has written the message
  } else if (e instanceof UsageError) {
    process.stderr.write(`swav: ${e.message}\n`);
    process.exitCode = 2;
  } else {
    process.stderr.write(`swav: error: ${(e instanceof Error ? e.message : String(e)).replace(/^swav: /, '')}\n`);
    if (process.env.SWAV_DEBUG && e instanceof Error) process.stderr.write(`${e.stack}\n`);
    process.exitCode = 1;
  }
});
