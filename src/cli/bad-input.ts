// Bad input found after option parsing (an unwritable output file, a vCPU list with nothing left to
// run): main() prints the message once, as "avic-smp: <message>", and exits with status 2.

export class BadInput extends Error {
  override readonly name = 'BadInput';
}
