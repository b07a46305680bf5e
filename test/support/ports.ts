/** A port the OS says is free on loopback right now (one implementation for the tests, the benchmarks and tools). */
export { freePort } from '../../tools/free-port.js';
