import { parseBasicAuthorization } from '../../authsvc/credentials.js';
import { renderRealm, type Realm, type RealmResponse } from '../../authsvc/realm.js';

/** A realm request as the HTTP layer would hand it over, and the answer rendered as it would be sent. */
export interface RealmCall {
  method: string;
  query: URLSearchParams;
  /** The Authorization header, if any. */
  authorization?: string;
  body?: string;
  source: string | null;
}

export async function answer(realm: Realm, call: RealmCall): Promise<RealmResponse> {
  const { authorization, ...rest } = call;
  const outcome = await realm({ ...rest, basic: parseBasicAuthorization(authorization) });
  return renderRealm(outcome, realm.realmUrl);
}
