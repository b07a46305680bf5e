// @peculiar/x509 resolves its algorithm registry through tsyringe, which needs the Reflect metadata
// API installed before the library's module body runs: this import must stay first.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

/**
 * The one place @peculiar/x509 is loaded and given node's WebCrypto as its provider, so every
 * module that creates certificates or reads CSRs gets a configured library whatever the import order.
 */
x509.cryptoProvider.set(webcrypto);

export { x509 };
