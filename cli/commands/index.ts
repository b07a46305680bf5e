import type { Command } from '../command.js';
import { auditCommands } from './audit.js';
import { caCommands } from './ca.js';
import { configCommands } from './config.js';
import { consoleCommands } from './console.js';
import { deviceCommands } from './device.js';
import { doctorCommands } from './doctor.js';
import { factoryCommands } from './factory.js';
import { keysCommands } from './keys.js';
import { loginCommands } from './login.js';
import { operatorCommands } from './operator.js';
import { readyCommand } from './ready.js';
import { serviceCommands } from './services.js';
import { shellCommands } from './shell.js';
import { storeCommands } from './store.js';
import { tokenCommands } from './token.js';
import { userCommands } from './user.js';

/** Every command, in the order `tollgate help` lists them. */
export const COMMANDS: readonly Command[] = [
  ...serviceCommands,
  readyCommand,
  ...factoryCommands,
  ...caCommands,
  ...deviceCommands,
  ...tokenCommands,
  ...loginCommands,
  ...userCommands,
  ...auditCommands,
  ...consoleCommands,
  ...keysCommands,
  ...configCommands,
  ...doctorCommands,
  ...shellCommands,
  ...operatorCommands,
  ...storeCommands,
];
