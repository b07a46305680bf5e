export { buildOciLayout, type OciImage } from '../../tools/oci-layout.js';
