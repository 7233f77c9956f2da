// A real OpenID Connect provider for the single sign-on tests: panva's certified
// oidc-provider with its own login form (devInteractions: any password, the login names
// the account). Configured from the environment by tests/test_sso.py:
//   OIDC_PORT          port to listen on (127.0.0.1)
//   OIDC_REDIRECT_URI  the one client's redirect URI (Nattero's callback)
//   OIDC_CLIENT_ID / OIDC_CLIENT_SECRET
//   OIDC_ACCOUNTS      JSON {login: [group, ...]}: the directory's users and their groups
// The groups travel in the "groups" claim (scope "groups"); for the code flow the
// provider puts them in its userinfo answer, as AD FS does for claims not in the ID token.
import { generateKeyPairSync } from "node:crypto";
import Provider from "oidc-provider";

const port = Number(process.env.OIDC_PORT);
const accounts = JSON.parse(process.env.OIDC_ACCOUNTS || "{}");
const issuer = `http://127.0.0.1:${port}`;

const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: "jwk" }), kid: "test-key", use: "sig", alg: "RS256" };

const provider = new Provider(issuer, {
  clients: [{
    client_id: process.env.OIDC_CLIENT_ID,
    client_secret: process.env.OIDC_CLIENT_SECRET,
    redirect_uris: [process.env.OIDC_REDIRECT_URI],
    grant_types: ["authorization_code"],
    response_types: ["code"],
  }],
  jwks: { keys: [signingKey] },
  cookies: { keys: ["nattero-test-provider-cookie-key"] },
  claims: { openid: ["sub"], profile: ["name", "preferred_username"], groups: ["groups"] },
  pkce: { required: () => true },
  async findAccount(ctx, sub) {
    if (!(sub in accounts)) return undefined;
    return {
      accountId: sub,
      async claims() {
        return { sub, preferred_username: sub, name: sub, groups: accounts[sub] };
      },
    };
  },
});
provider.proxy = false;
provider.listen(port, "127.0.0.1", () => console.log(`oidc-provider listening on ${issuer}`));
