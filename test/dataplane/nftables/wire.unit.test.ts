import { describe, expect, it } from 'vitest';
import { encodeMessage, parseMessages } from '../../../dataplane/netlink/codec';
import { nla } from '../../../dataplane/netlink/codec';
import {
  decodeElements, encodeElement, nftType, NFT_MSG, NFTA_DATA_VALUE, NFTA_LIST_ELEM, NFTA_SET_ELEM_DATA, NFTA_SET_ELEM_KEY, NFTA_SET_ELEM_LIST_ELEMENTS, ruleComment, setElemMessages,
} from '../../../dataplane/nftables/wire';

function roundTrip(elems: Array<[string, string]>) {
  const msgs = setElemMessages('add', 2, 't', 's', elems);
  // as the kernel's dump would send them back
  const wire = Buffer.concat(msgs.map((m, i) => encodeMessage({ type: m.type, flags: 0, seq: i, pid: 0, body: m.body })));
  return { msgs, decoded: decodeElements(parseMessages(wire)) };
}

describe('nf_tables set element codec', () => {
  it('round-trips value and verdict elements', () => {
    const elems: Array<[string, string]> = [['01000000', 'v:0a0000011f900000'], ['0050', 'goto:svc_tcp_80_1009_flow'], ['0a0000010050', 'jump:x']];
    const { msgs, decoded } = roundTrip(elems);
    expect(msgs).toHaveLength(1);
    expect(msgs[0].type).toBe(nftType(NFT_MSG.NEWSETELEM));
    expect([...decoded]).toEqual(elems);
  });

  it('cuts big changes into messages whose element list fits a 16-bit attribute length', () => {
    const elems: Array<[string, string]> = Array.from({ length: 5000 }, (_, i) => [i.toString(16).padStart(8, '0'), 'v:0a0000011f900000']);
    const { msgs, decoded } = roundTrip(elems);
    expect(msgs.length).toBeGreaterThan(1);
    for (const m of msgs) expect(m.body.length).toBeLessThan(65_536);
    expect(decoded.size).toBe(5000);
    expect(decoded.get('00001387')).toBe('v:0a0000011f900000');
  });

  it('encodes a delete without data, the fast path byte for byte like the attribute helpers', () => {
    const del = setElemMessages('delete', 2, 't', 's', [['01000000']]);
    expect(del[0].type).toBe(nftType(NFT_MSG.DELSETELEM));
    expect(encodeElement('01000000').length).toBe(16);
    // the test's name, checked: the hand-written buffer is what the generic attribute encoders make
    const key = nla.nested(NFTA_SET_ELEM_KEY, [nla.bytes(NFTA_DATA_VALUE, Buffer.from('01000000', 'hex'))]);
    expect(encodeElement('01000000')).toEqual(nla.nested(NFTA_LIST_ELEM, [key]));
    const data = nla.nested(NFTA_SET_ELEM_DATA, [nla.bytes(NFTA_DATA_VALUE, Buffer.from('0a0000011f900000', 'hex'))]);
    expect(encodeElement('01000000', 'v:0a0000011f900000')).toEqual(nla.nested(NFTA_LIST_ELEM, [key, data]));
    expect(NFTA_SET_ELEM_LIST_ELEMENTS).toBe(3);
  });

  it("reads nft's comment from rule user data", () => {
    const ud = Buffer.concat([Buffer.from([0, 5]), Buffer.from('w:ab\0')]);
    expect(ruleComment(ud)).toBe('w:ab');
    expect(ruleComment(undefined)).toBeUndefined();
  });
});
