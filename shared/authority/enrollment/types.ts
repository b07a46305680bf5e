import type { Device } from '../../store/types.js';

/** What an enrollment hands back: the device, its certificate, and the CA certificate its chain ends in. */
export interface Enrolled {
  device: Device;
  certificatePem: string;
  caCertificatePem: string;
}
