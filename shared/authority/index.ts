export * from './context.js';
export * from './names.js';
export * from './factories.js';
export * from './devices.js';
export * from './tokens.js';
export * from './identify.js';
export * from './signing-keys.js';
