#!/usr/bin/env node
import { runCli } from './run.js';

/** `tollgate`: the operator's and CI's command line. See `tollgate help`. */
process.exitCode = await runCli(process.argv.slice(2));
