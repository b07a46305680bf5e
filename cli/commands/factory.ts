import { presentFactory } from '../../admin/present.js';
import { createFactory } from '../../shared/authority/index.js';
import type { Command } from '../command.js';
import { OPERATOR } from '../context.js';
import { fields, table } from '../format.js';

export const factoryCommands: Command[] = [
  {
    name: ['factory', 'create'],
    args: ['name'],
    usage: '<name>',
    summary: 'create a factory (operator only)',
    details: 'The name becomes the first component of the factory\'s repositories: a-z, 0-9 and single . _ - between them.',
    mode: 'local',
    async run(ctx, { args }) {
      const factory = presentFactory(await createFactory(ctx.authority(), OPERATOR, args.name));
      ctx.print(factory, () => `created factory ${factory.name} (${factory.id})\nnext: tollgate ca create ${factory.name}`);
    },
  },
  {
    name: ['factory', 'list'],
    args: [],
    usage: '',
    summary: 'list the factories (operator only)',
    mode: 'local',
    async run(ctx) {
      const factories = (await ctx.authority().store.listFactories()).map(presentFactory);
      ctx.print(factories, () => table(['NAME', 'ID', 'CREATED'], factories.map((f) => [f.name, f.id, f.createdAt])));
    },
  },
  {
    name: ['factory', 'show'],
    args: ['name'],
    usage: '<name>',
    summary: 'show a factory',
    mode: 'any',
    async run(ctx, { args }) {
      const f = await ctx.client().getFactory(args.name);
      ctx.print(f, () => fields([['name', f.name], ['id', f.id], ['created', f.createdAt]]));
    },
  },
];
