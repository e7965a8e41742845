// The console: sign in with an API key, then the view of the key's role.
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { clearKey, getJson, getKey, setKey, type Session } from "./api";
import { getLanguage, setLanguage, t, useLanguage } from "./i18n";
import "./style.css";
import { ErrorLine } from "./ui";
import { AuditorView } from "./views/Auditor";
import { OperationsView } from "./views/Operations";
import { PartnerView } from "./views/Partner";

function LanguageToggle() {
  return (
    <button type="button" data-testid="language" lang={getLanguage() === "en" ? "zh-CN" : "en"} onClick={() => setLanguage(getLanguage() === "en" ? "zh" : "en")}>
      {t("switchLanguage")}
    </button>
  );
}

function SignIn(props: { onSession: (session: Session) => void }) {
  const [key, setValue] = useState("");
  const [error, setError] = useState<unknown>(null);
  const submit = async (event: Event) => {
    event.preventDefault();
    setKey(key.trim());
    try {
      props.onSession(await getJson<Session>("/v1/console/session"));
    } catch (failure) {
      clearKey();
      setError(failure);
    }
  };
  return (
    <main class="signin">
      <h1>{t("appTitle")}</h1>
      <form onSubmit={submit}>
        <h2>{t("signInTitle")}</h2>
        <p>{t("signInHelp")}</p>
        <label for="api-key">{t("apiKey")}</label>
        <input id="api-key" type="password" autocomplete="off" value={key} onInput={(e) => setValue(e.currentTarget.value)} required />
        <button type="submit">{t("signIn")}</button>
        <ErrorLine error={error} />
      </form>
      <LanguageToggle />
    </main>
  );
}

function App() {
  useLanguage();
  const [session, setSession] = useState<Session | null>(null);
  const [checking, setChecking] = useState(Boolean(getKey()));
  useEffect(() => {
    document.documentElement.lang = getLanguage() === "zh" ? "zh-CN" : "en";
    if (!getKey()) return;
    getJson<Session>("/v1/console/session")
      .then(setSession)
      .catch(() => clearKey())
      .finally(() => setChecking(false));
  }, []);
  if (checking) return null;
  if (!session) return <SignIn onSession={setSession} />;
  const signOut = () => {
    clearKey();
    setSession(null);
  };
  return (
    <>
      <header>
        <span class="brand">{t("appTitle")}</span>
        <span>
          {t("signedInAs")} <strong data-testid="role">{session.role}</strong>
        </span>
        <LanguageToggle />
        <button type="button" onClick={signOut}>
          {t("signOut")}
        </button>
      </header>
      <main>
        {session.role === "partner" && <PartnerView session={session} />}
        {session.role === "auditor" && <AuditorView />}
        {(session.role === "lender_admin" || session.role === "lender_app") && <OperationsView session={session} />}
      </main>
    </>
  );
}

render(<App />, document.getElementById("app")!);
