//! Meta's error object, what each code means for the sender, and the client's boundary error.
//!
//! Meta answers a failed call with `{"error": {...}}` ([`MetaError`]); the same object shape
//! arrives asynchronously in `failed` status webhooks and `value.errors`. What to do about an
//! error is decided on its `code` (and, for a few codes, `error_subcode`), never on the HTTP
//! status: [`classify`] turns a code into a [`CodeInfo`] with a [`Disposition`], a suggested
//! delay and a plain-words explanation for the `error_help` field people read in Odoo.
//!
//! Every code in the fact sheet's table (`shared/whatsapp-cloud-api.md`, section 5) is listed in
//! [`classify`]; a code it does not know is never retried blindly ([`Disposition::Never`]).
//!
//! [`WhatsAppError`] is what the client returns: Meta's answer, a transport failure, a payload or
//! media problem found before any network call, or a response that could not be read.

use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;
use std::time::Duration;

use super::media::MediaError;
use super::payload::PayloadError;
use crate::lang::Lang;

/// Meta's error object, from an HTTP error response or a webhook.
///
/// Parsing is lenient: every field is optional except that a missing or unreadable `code`
/// becomes `-1`, which [`classify`] treats as unknown (never retried).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetaError {
    /// The numeric code that decides what to do (e.g. 131056).
    #[serde(default = "unknown_code", deserialize_with = "de_code")]
    pub code: i64,
    /// Deprecated by Meta for most WhatsApp errors since v16, still sent for some Graph errors
    /// (e.g. 33 with code 100: the object does not exist).
    #[serde(
        default,
        deserialize_with = "de_opt_i64",
        skip_serializing_if = "Option::is_none"
    )]
    pub error_subcode: Option<i64>,
    /// A short title (webhook errors and newer responses). Meta says titles will be deprecated.
    #[serde(
        default,
        deserialize_with = "de_opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub title: Option<String>,
    /// The message, usually `(#code) title`.
    #[serde(
        default,
        deserialize_with = "de_string",
        skip_serializing_if = "String::is_empty"
    )]
    pub message: String,
    /// The Graph exception type, e.g. `OAuthException`.
    #[serde(
        rename = "type",
        default,
        deserialize_with = "de_opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub kind: Option<String>,
    /// `error_data.details`: Meta's explanation for this particular failure.
    #[serde(
        default,
        deserialize_with = "de_error_data",
        skip_serializing_if = "Option::is_none"
    )]
    pub error_data: Option<ErrorData>,
    /// Meta support asks for this id; log it.
    #[serde(
        default,
        deserialize_with = "de_opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub fbtrace_id: Option<String>,
    /// Link to Meta's error-code page (webhook errors).
    #[serde(
        default,
        deserialize_with = "de_opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub href: Option<String>,
    /// Shown to end users by some Graph errors.
    #[serde(
        default,
        deserialize_with = "de_opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub error_user_title: Option<String>,
    /// Shown to end users by some Graph errors.
    #[serde(
        default,
        deserialize_with = "de_opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub error_user_msg: Option<String>,
}

/// `error_data` of a [`MetaError`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ErrorData {
    /// Usually `whatsapp`.
    #[serde(
        default,
        deserialize_with = "de_opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub messaging_product: Option<String>,
    /// Meta's explanation of this failure.
    #[serde(
        default,
        deserialize_with = "de_opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub details: Option<String>,
}

/// The body of a Graph API error response: `{"error": {...}}`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ErrorEnvelope {
    pub error: MetaError,
}

fn unknown_code() -> i64 {
    -1
}

/// Accepts a number or a numeric string; anything else becomes `-1` (unknown).
fn de_code<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    Ok(lenient_i64(&v).unwrap_or(-1))
}

fn de_opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    Ok(lenient_i64(&v))
}

/// `error_data` is an object for WhatsApp errors, but some Graph errors send a string.
fn de_error_data<'de, D: Deserializer<'de>>(d: D) -> Result<Option<ErrorData>, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    Ok(match v {
        serde_json::Value::Object(_) => serde_json::from_value(v).ok(),
        serde_json::Value::String(s) if !s.is_empty() => Some(ErrorData {
            messaging_product: None,
            details: Some(s),
        }),
        _ => None,
    })
}

fn de_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    Ok(lenient_string(&v).unwrap_or_default())
}

fn de_opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    Ok(lenient_string(&v))
}

fn lenient_string(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

pub(crate) fn lenient_i64(v: &serde_json::Value) -> Option<i64> {
    match v {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

impl MetaError {
    /// A minimal error with just a code and message (used by tests and the sandbox).
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        MetaError {
            code,
            error_subcode: None,
            title: None,
            message: message.into(),
            kind: None,
            error_data: None,
            fbtrace_id: None,
            href: None,
            error_user_title: None,
            error_user_msg: None,
        }
    }

    /// The error Meta would send for `code`: message `(#code) Title`, title, type
    /// `OAuthException`, `error_data.details` and a trace id (the sandbox answers with it).
    pub fn for_code(code: i64, details: impl Into<String>, fbtrace_id: impl Into<String>) -> Self {
        let title = classify(code, None).title;
        let mut e = MetaError::new(code, format!("(#{code}) {title}")).with_details(details);
        e.title = Some(title.to_string());
        e.kind = Some("OAuthException".into());
        e.fbtrace_id = Some(fbtrace_id.into());
        e
    }

    /// `{"error": {...}}`: the body of an error response.
    pub fn to_response_body(&self) -> serde_json::Value {
        serde_json::json!({ "error": self })
    }

    /// Sets `error_data.details`.
    pub fn with_details(mut self, details: impl Into<String>) -> Self {
        self.error_data = Some(ErrorData {
            messaging_product: Some("whatsapp".into()),
            details: Some(details.into()),
        });
        self
    }

    /// `error_data.details`, if Meta sent it.
    pub fn details(&self) -> Option<&str> {
        self.error_data.as_ref().and_then(|d| d.details.as_deref())
    }

    /// What this code means for the sender.
    pub fn info(&self) -> CodeInfo {
        classify(self.code, self.error_subcode)
    }

    /// What to do about this error (decided on code and subcode).
    pub fn disposition(&self) -> Disposition {
        self.info().disposition
    }

    /// Meta's title, else the message, else our short name for the code.
    pub fn display_title(&self) -> String {
        if let Some(t) = self.title.as_deref().filter(|t| !t.trim().is_empty()) {
            return t.to_string();
        }
        if !self.message.trim().is_empty() {
            return self.message.clone();
        }
        self.info().title.to_string()
    }

    /// A plain-words explanation for people (the `error_help` field): what happened, what to
    /// do, and Meta's own details when it sent them.
    pub fn help(&self) -> String {
        self.help_in(Lang::En)
    }

    /// [`MetaError::help`] in `lang` (Meta's own details stay as Meta wrote them).
    pub fn help_in(&self, lang: Lang) -> String {
        let info = self.info();
        let subcode = self
            .error_subcode
            .map(|s| lang.pick(format!(" (subcode {s})"), format!(" (sous-code {s})")))
            .unwrap_or_default();
        let code = self.code;
        let mut out = if info.known {
            info.help_in(lang).to_string()
        } else {
            match lang {
                Lang::En => format!(
                    "Meta returned error code {code}{subcode}, which this daemon does not know, \
                     so the message is not retried automatically. Read Meta's details below and \
                     the error-code page \
                     (https://developers.facebook.com/documentation/business-messaging/whatsapp/support/error-codes), \
                     fix the cause, then send again."
                ),
                Lang::Fr => format!(
                    "Meta a renvoyé le code d'erreur {code}{subcode}, que ce démon ne connaît pas, \
                     le message n'est donc pas réessayé automatiquement. Lisez les détails de \
                     Meta ci-dessous et la page des codes d'erreur \
                     (https://developers.facebook.com/documentation/business-messaging/whatsapp/support/error-codes), \
                     corrigez la cause, puis renvoyez."
                ),
            }
        };
        let says = lang.pick(" Meta says: ", " Meta indique : ");
        if let Some(details) = self.details().filter(|d| !d.trim().is_empty()) {
            out.push_str(says);
            out.push_str(details.trim());
        } else if !info.known && !self.message.trim().is_empty() {
            out.push_str(says);
            out.push_str(self.message.trim());
        }
        if let Some(trace) = &self.fbtrace_id {
            out.push_str(&format!(" (fbtrace_id {trace})"));
        }
        out
    }
}

impl fmt::Display for MetaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Meta error {}", self.code)?;
        if let Some(s) = self.error_subcode {
            write!(f, " (subcode {s})")?;
        }
        write!(f, ": {}", self.display_title())?;
        if let Some(d) = self.details().filter(|d| !d.trim().is_empty()) {
            write!(f, ": {}", d.trim())?;
        }
        if let Some(trace) = &self.fbtrace_id {
            write!(f, " [fbtrace_id {trace}]")?;
        }
        Ok(())
    }
}

/// What the sender should do about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Disposition {
    /// Transient: retry with a short, jittered back-off (seconds).
    RetryNow,
    /// Retry only after a long delay or a change of state (minutes to a day).
    RetryLater,
    /// Only this recipient is affected (pair rate limit): retry to them after six seconds or
    /// more; other recipients go on as before.
    RetryRecipientLater,
    /// Do not retry: a person must change the message, the template or the recipient.
    Never,
    /// Stop sending from this account until a person fixes it (token, permissions, ban,
    /// registration, payment).
    PauseAccount,
}

impl Disposition {
    /// True for the three retry dispositions.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            Disposition::RetryNow | Disposition::RetryLater | Disposition::RetryRecipientLater
        )
    }

    /// A stable lower-case name (`retry_now`, `pause_account`, ...), e.g. for metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Disposition::RetryNow => "retry_now",
            Disposition::RetryLater => "retry_later",
            Disposition::RetryRecipientLater => "retry_recipient_later",
            Disposition::Never => "never",
            Disposition::PauseAccount => "pause_account",
        }
    }
}

impl fmt::Display for Disposition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a code means: the decision, a suggested first delay, a short title and help text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeInfo {
    /// The decision.
    pub disposition: Disposition,
    /// A suggested first delay before retrying (the caller adds jitter and grows it).
    pub retry_after: Option<Duration>,
    /// True when a running campaign should pause itself (spam limit, paused template).
    pub pauses_campaign: bool,
    /// False when the code is not in the table (the help text is then generic).
    pub known: bool,
    /// A short title.
    pub title: &'static str,
    /// What happened and what to do, in plain words.
    pub help: &'static str,
    /// The same in French.
    pub help_fr: &'static str,
}

impl CodeInfo {
    /// [`CodeInfo::help`] in `lang`.
    pub fn help_in(&self, lang: Lang) -> &'static str {
        lang.pick(self.help, self.help_fr)
    }
}

const fn info(
    disposition: Disposition,
    retry_after_secs: Option<u64>,
    title: &'static str,
    help: &'static str,
    help_fr: &'static str,
) -> CodeInfo {
    CodeInfo {
        disposition,
        retry_after: match retry_after_secs {
            Some(s) => Some(Duration::from_secs(s)),
            None => None,
        },
        pauses_campaign: false,
        known: true,
        title,
        help,
        help_fr,
    }
}

const fn pausing_campaign(mut i: CodeInfo) -> CodeInfo {
    i.pauses_campaign = true;
    i
}

use Disposition::{Never, PauseAccount, RetryLater, RetryNow, RetryRecipientLater};

const MINUTE: u64 = 60;
const HOUR: u64 = 3600;

/// Classifies an error code (and subcode) from Meta. Codes missing from the fact sheet's table
/// are [`Disposition::Never`] with `known == false`.
pub fn classify(code: i64, subcode: Option<i64>) -> CodeInfo {
    match (code, subcode) {
        (0, _) => info(PauseAccount, None, "Access token invalid",
            "The access token is invalid, expired or revoked. Sending from this account is paused: \
             create a permanent System User token with the whatsapp_business_messaging and \
             whatsapp_business_management permissions and put it in the account's settings.",
            "Le jeton d'accès est invalide, expiré ou révoqué. L'envoi depuis ce compte est en \
             pause : créez un jeton permanent d'utilisateur système avec les autorisations \
             whatsapp_business_messaging et whatsapp_business_management et mettez-le dans les \
             paramètres du compte."),
        (190, _) => info(PauseAccount, None, "Access token expired",
            "The access token has expired or was revoked (a 24-hour token from the App Dashboard \
             expires quickly). Sending from this account is paused: create a permanent System User \
             token with the whatsapp_business_messaging and whatsapp_business_management \
             permissions and put it in the account's settings.",
            "Le jeton d'accès a expiré ou a été révoqué (un jeton de 24 heures du tableau de bord \
             de l'application expire vite). L'envoi depuis ce compte est en pause : créez un jeton \
             permanent d'utilisateur système avec les autorisations whatsapp_business_messaging et \
             whatsapp_business_management et mettez-le dans les paramètres du compte."),
        (3, _) => info(PauseAccount, None, "Capability missing",
            "The Meta app behind this token cannot make this call (the WhatsApp product or a \
             capability is missing on the app). Sending from this account is paused until the app \
             is set up in the Meta developer dashboard.",
            "L'application Meta derrière ce jeton ne peut pas faire cet appel (le produit \
             WhatsApp ou une capacité manque sur l'application). L'envoi depuis ce compte est en \
             pause jusqu'à ce que l'application soit configurée dans le tableau de bord des \
             développeurs Meta."),
        (10, _) => info(PauseAccount, None, "Permission denied",
            "The token lacks a permission. Give the System User the whatsapp_business_messaging \
             (sending) and whatsapp_business_management (templates, number) permissions and \
             assign it the WhatsApp account, then generate a new token. Sending is paused.",
            "Il manque une autorisation au jeton. Donnez à l'utilisateur système les \
             autorisations whatsapp_business_messaging (envoi) et whatsapp_business_management \
             (modèles, numéro), attribuez-lui le compte WhatsApp, puis générez un nouveau jeton. \
             L'envoi est en pause."),
        (200..=299, _) => info(PauseAccount, None, "API permission missing",
            "The token is not allowed to do this (Graph API permission error). Check the System \
             User's permissions (whatsapp_business_messaging, whatsapp_business_management) and \
             that the WhatsApp account is assigned to it. Sending is paused.",
            "Le jeton n'a pas le droit de faire cela (erreur d'autorisation de la Graph API). \
             Vérifiez les autorisations de l'utilisateur système (whatsapp_business_messaging, \
             whatsapp_business_management) et que le compte WhatsApp lui est attribué. L'envoi \
             est en pause."),
        (4, _) => info(RetryLater, Some(5 * MINUTE), "App rate limit reached",
            "The Meta app made too many Graph API calls. The message will be retried after a few \
             minutes; nothing needs fixing unless this repeats.",
            "L'application Meta a fait trop d'appels à la Graph API. Le message sera réessayé \
             dans quelques minutes ; rien n'est à corriger sauf si cela se répète."),
        (80007, _) => info(RetryLater, Some(MINUTE), "WhatsApp account rate limit reached",
            "The WhatsApp Business account reached its rate limit. Sending slows down and the \
             message is retried later.",
            "Le compte WhatsApp Business a atteint sa limite de débit. L'envoi ralentit et le \
             message est réessayé plus tard."),
        (613, _) => info(RetryLater, Some(MINUTE), "Call rate limit reached",
            "Too many calls in a short time. The message is retried after a minute.",
            "Trop d'appels en peu de temps. Le message est réessayé dans une minute."),
        (130429, _) => info(RetryNow, Some(2), "Throughput limit reached",
            "The phone number sent more messages per second than Meta allows (about 80, or 1,000 \
             after an upgrade). The message is retried in a few seconds at a lower rate.",
            "Le numéro a envoyé plus de messages par seconde que Meta ne le permet (environ 80, \
             ou 1 000 après une mise à niveau). Le message est réessayé dans quelques secondes à \
             un rythme plus bas."),
        (131056, _) => info(RetryRecipientLater, Some(6), "Pair rate limit hit",
            "Too many messages went to this same recipient in a short time (about one every six \
             seconds is allowed). This message is retried shortly; other recipients are not \
             affected.",
            "Trop de messages sont partis vers ce même destinataire en peu de temps (environ un \
             toutes les six secondes est permis). Ce message est réessayé sous peu ; les autres \
             destinataires ne sont pas concernés."),
        (131048, _) => pausing_campaign(info(RetryLater, Some(24 * HOUR), "Spam rate limit hit",
            "Meta restricted sending because earlier messages were blocked or reported by users. \
             Stop campaigns and check the number's quality rating in WhatsApp Manager; retrying \
             now makes it worse. The message is retried after a day.",
            "Meta a restreint l'envoi parce que des messages précédents ont été bloqués ou \
             signalés par des utilisateurs. Arrêtez les campagnes et vérifiez la note de qualité \
             du numéro dans WhatsApp Manager ; réessayer maintenant aggrave la situation. Le \
             message est réessayé après un jour.")),
        (131049, _) => info(RetryLater, Some(24 * HOUR), "Not delivered to keep engagement healthy",
            "Meta chose not to deliver this marketing message (the user received too many, or \
             engagement is low). It is retried after a day at the earliest; do not resend it \
             sooner.",
            "Meta a choisi de ne pas remettre ce message marketing (l'utilisateur en a reçu trop, \
             ou l'engagement est faible). Il est réessayé au plus tôt après un jour ; ne le \
             renvoyez pas avant."),
        (131050, _) => info(Never, None, "User stopped marketing messages",
            "This user has turned off marketing messages from businesses. Do not send them \
             marketing templates; utility messages and replies are still possible.",
            "Cet utilisateur a désactivé les messages marketing des entreprises. Ne lui envoyez \
             pas de modèles marketing ; les messages utilitaires et les réponses restent \
             possibles."),
        (131047, _) => info(Never, None, "Outside the 24-hour window",
            "More than 24 hours have passed since the customer last wrote, so only an approved \
             template may be sent. Send a template instead of a free-form message.",
            "Plus de 24 heures se sont écoulées depuis le dernier message du client : seul un \
             modèle approuvé peut être envoyé. Envoyez un modèle au lieu d'un message libre."),
        (470, _) => info(Never, None, "Outside the 24-hour window (On-Premises)",
            "More than 24 hours have passed since the customer last wrote (On-Premises API code). \
             Send an approved template instead.",
            "Plus de 24 heures se sont écoulées depuis le dernier message du client (code de \
             l'API On-Premises). Envoyez plutôt un modèle approuvé."),
        (131026, _) => info(Never, None, "Message undeliverable",
            "The number cannot receive this message: it is not on WhatsApp, uses an old app, or \
             its owner has not accepted WhatsApp's current terms. Check the number with the \
             customer; it can be tried again in a few days.",
            "Le numéro ne peut pas recevoir ce message : il n'est pas sur WhatsApp, utilise une \
             ancienne version de l'application, ou son titulaire n'a pas accepté les conditions \
             actuelles de WhatsApp. Vérifiez le numéro avec le client ; un nouvel essai est \
             possible dans quelques jours."),
        (131051, _) => info(Never, None, "Unsupported message type",
            "This message type is not supported (or the user sent one WhatsApp cannot pass on).",
            "Ce type de message n'est pas pris en charge (ou l'utilisateur en a envoyé un que \
             WhatsApp ne peut pas transmettre)."),
        (131052, _) => info(Never, None, "Media download error",
            "A file the user sent could not be fetched from WhatsApp. Ask the user to send it \
             again.",
            "Un fichier envoyé par l'utilisateur n'a pas pu être récupéré auprès de WhatsApp. \
             Demandez-lui de le renvoyer."),
        (131053, _) => info(Never, None, "Media upload error",
            "Meta could not process the media: wrong type, too large, or the link was \
             unreachable. Fix the file or its link and send again.",
            "Meta n'a pas pu traiter le fichier : mauvais type, trop volumineux, ou lien \
             injoignable. Corrigez le fichier ou son lien et renvoyez."),
        (131000, _) => info(RetryNow, Some(10), "Something went wrong at Meta",
            "Meta had an internal error. The message is retried shortly.",
            "Meta a eu une erreur interne. Le message est réessayé sous peu."),
        (131016, _) => info(RetryNow, Some(30), "Service unavailable",
            "WhatsApp is temporarily unavailable. The message is retried shortly; see \
             https://metastatus.com if it lasts.",
            "WhatsApp est temporairement indisponible. Le message est réessayé sous peu ; \
             consultez https://metastatus.com si cela dure."),
        (1, _) => info(RetryNow, Some(30), "Unknown API error",
            "The Graph API failed for an unknown, possibly temporary reason. The message is \
             retried shortly; see https://metastatus.com if it lasts.",
            "La Graph API a échoué pour une raison inconnue, peut-être passagère. Le message est \
             réessayé sous peu ; consultez https://metastatus.com si cela dure."),
        (2, _) => info(RetryNow, Some(30), "API service temporarily unavailable",
            "The Graph API is temporarily unavailable. The message is retried shortly.",
            "La Graph API est temporairement indisponible. Le message est réessayé sous peu."),
        (131057, _) => info(RetryLater, Some(MINUTE), "Account in maintenance mode",
            "The business account is in maintenance mode (for example during a throughput \
             upgrade, which takes about a minute). The message is retried after a minute.",
            "Le compte professionnel est en mode maintenance (par exemple pendant une hausse de \
             débit, qui prend environ une minute). Le message est réessayé dans une minute."),
        (100, Some(33)) => info(PauseAccount, None, "Object does not exist",
            "An id in the request does not exist, or this token cannot see it: usually the phone \
             number ID or the WhatsApp Business Account ID in the account settings is wrong (use \
             the ids from WhatsApp Manager > API Setup, not the phone number itself), or the \
             System User was not assigned the WhatsApp account. Sending is paused.",
            "Un identifiant de la requête n'existe pas, ou ce jeton ne peut pas le voir : le plus \
             souvent l'ID du numéro de téléphone ou l'ID du compte WhatsApp Business dans les \
             paramètres du compte est faux (utilisez les identifiants de WhatsApp Manager > API \
             Setup, pas le numéro lui-même), ou le compte WhatsApp n'a pas été attribué à \
             l'utilisateur système. L'envoi est en pause."),
        (100, _) => info(Never, None, "Invalid parameter",
            "Meta rejected a parameter of the request as invalid. This is a problem in the \
             message as built; read Meta's details, fix the message or template settings and \
             send again.",
            "Meta a refusé un paramètre de la requête comme invalide. Le problème vient du \
             message tel qu'il a été construit ; lisez les détails de Meta, corrigez le message \
             ou les réglages du modèle et renvoyez."),
        (131008, _) => info(Never, None, "Required parameter missing",
            "A required parameter is missing from the message. Fix the message or the template \
             variables and send again.",
            "Un paramètre obligatoire manque au message. Corrigez le message ou les variables du \
             modèle et renvoyez."),
        (131009, _) => info(Never, None, "Parameter value not valid",
            "A parameter value is not valid (for example a wrong phone number, an unknown media \
             id, or a button id that is too long). Fix it and send again.",
            "La valeur d'un paramètre n'est pas valide (par exemple un mauvais numéro, un ID de \
             média inconnu ou un ID de bouton trop long). Corrigez-la et renvoyez."),
        (131021, _) => info(Never, None, "Recipient is the sender",
            "The message was addressed to the business's own number. Use the customer's \
             number.",
            "Le message était adressé au numéro de l'entreprise elle-même. Utilisez le numéro du \
             client."),
        (131030, _) => info(Never, None, "Recipient not in the allowed list",
            "This is a test number, which may only send to numbers added to its allowed list in \
             the Meta developer dashboard. Add the recipient there, or use a production number.",
            "C'est un numéro de test, qui ne peut envoyer qu'aux numéros ajoutés à sa liste \
             autorisée dans le tableau de bord des développeurs Meta. Ajoutez-y le destinataire, \
             ou utilisez un numéro de production."),
        (131031, _) => info(PauseAccount, None, "Business account locked",
            "The WhatsApp Business account is locked (for example for a policy violation or a \
             failed verification). Sending is paused; check Business Support Home and WhatsApp \
             Manager.",
            "Le compte WhatsApp Business est verrouillé (par exemple pour une infraction aux \
             règles ou une vérification échouée). L'envoi est en pause ; consultez Business \
             Support Home et WhatsApp Manager."),
        (131042, _) => info(PauseAccount, None, "Business eligibility or payment problem",
            "The business account has a payment or eligibility problem (no valid payment method, \
             credit line exceeded, or account not eligible). Sending is paused until the payment \
             settings in WhatsApp Manager are fixed.",
            "Le compte professionnel a un problème de paiement ou d'éligibilité (pas de moyen de \
             paiement valide, ligne de crédit dépassée, ou compte non éligible). L'envoi est en \
             pause jusqu'à la correction des paramètres de paiement dans WhatsApp Manager."),
        (132000, _) => info(Never, None, "Template parameter count mismatch",
            "The number of template variables sent does not match the template. Sync the \
             templates and check the template's variable lines.",
            "Le nombre de variables envoyées ne correspond pas au modèle. Synchronisez les \
             modèles et vérifiez les lignes de variables du modèle."),
        (132001, _) => info(Never, None, "Template does not exist",
            "No approved template exists with this name and language. Sync the templates from \
             Meta and check the template name and language on the account.",
            "Aucun modèle approuvé n'existe avec ce nom et cette langue. Synchronisez les \
             modèles depuis Meta et vérifiez le nom et la langue du modèle sur le compte."),
        (132005, _) => info(Never, None, "Template text too long",
            "With its variables filled in, the template's text is longer than Meta allows. \
             Shorten the values put into the variables.",
            "Une fois ses variables remplies, le texte du modèle dépasse la longueur permise par \
             Meta. Raccourcissez les valeurs mises dans les variables."),
        (132007, _) => info(Never, None, "Template format policy broken",
            "The filled-in template breaks Meta's formatting policy (for example forbidden \
             characters in a variable). Change the variable values.",
            "Le modèle rempli enfreint les règles de mise en forme de Meta (par exemple des \
             caractères interdits dans une variable). Changez les valeurs des variables."),
        (132012, _) => info(Never, None, "Template parameter format mismatch",
            "A template variable has the wrong format, for example a header that expects an image \
             was given a document. Check the template's header type and variables.",
            "Une variable du modèle n'a pas le bon format, par exemple un en-tête qui attend une \
             image a reçu un document. Vérifiez le type d'en-tête et les variables du modèle."),
        (132015, _) => pausing_campaign(info(RetryLater, Some(3 * HOUR), "Template paused",
            "Meta paused this template for low quality (3 hours the first time, 6 hours the \
             second). It can be sent again once Meta approves it again; campaigns using it \
             pause.",
            "Meta a mis ce modèle en pause pour qualité insuffisante (3 heures la première fois, \
             6 heures la deuxième). Il pourra être renvoyé quand Meta l'aura de nouveau \
             approuvé ; les campagnes qui l'utilisent se mettent en pause.")),
        (132016, _) => pausing_campaign(info(Never, None, "Template disabled",
            "Meta disabled this template after repeated low quality. Create a new template \
             and use it instead.",
            "Meta a désactivé ce modèle après des problèmes de qualité répétés. Créez un nouveau \
             modèle et utilisez-le à sa place.")),
        (133010, _) => info(PauseAccount, None, "Phone number not registered",
            "The business phone number is not registered on the Cloud API. Register it (POST \
             /{phone-number-id}/register) in WhatsApp Manager; sending is paused until then.",
            "Le numéro de l'entreprise n'est pas enregistré sur la Cloud API. Enregistrez-le \
             (POST /{phone-number-id}/register) dans WhatsApp Manager ; l'envoi est en pause \
             jusque-là."),
        (368, _) => info(PauseAccount, None, "Temporarily blocked for policy violations",
            "The account is temporarily blocked for violating WhatsApp policies. Sending is \
             paused; check Business Support Home for the violation and the block's end date.",
            "Le compte est temporairement bloqué pour infraction aux règles de WhatsApp. L'envoi \
             est en pause ; consultez Business Support Home pour l'infraction et la date de fin \
             du blocage."),
        (130497, _) => info(Never, None, "Country restricted",
            "This business may not message users in the recipient's country. Do not send to \
             numbers from that country with this account.",
            "Cette entreprise ne peut pas écrire aux utilisateurs du pays du destinataire. \
             N'envoyez pas vers des numéros de ce pays avec ce compte."),
        (130472, _) => info(Never, None, "User in a marketing experiment",
            "The user's number is part of a Meta marketing experiment and this marketing message \
             was not delivered. No action is needed; do not resend it.",
            "Le numéro de l'utilisateur fait partie d'une expérience marketing de Meta et ce \
             message marketing n'a pas été remis. Aucune action n'est nécessaire ; ne le \
             renvoyez pas."),
        _ => CodeInfo {
            disposition: Never,
            retry_after: None,
            pauses_campaign: false,
            known: false,
            title: "Unknown error code",
            help: "Meta returned an error code this daemon does not know, so the message is not \
                   retried automatically.",
            help_fr: "Meta a renvoyé un code d'erreur que ce démon ne connaît pas, le message \
                      n'est donc pas réessayé automatiquement.",
        },
    }
}

/// The client's error: everything that can go wrong talking to the Cloud API.
///
/// No variant ever contains an access token: tokens travel in the `Authorization` header, and
/// transport errors are stored without their URL.
#[derive(Debug, thiserror::Error)]
pub enum WhatsAppError {
    /// The message breaks one of Meta's limits; found before any network call.
    #[error("message not sent: {0}")]
    Payload(#[from] PayloadError),

    /// The media file breaks a type or size rule, or its bytes did not match.
    #[error("{0}")]
    Media(#[from] MediaError),

    /// The client or account configuration cannot work (bad id, version or URL).
    #[error("configuration problem: {0}")]
    Config(String),

    /// Meta answered with an error object.
    #[error("{operation}: {error} (HTTP {status})")]
    Meta {
        /// What the client was doing, e.g. `send message`.
        operation: &'static str,
        /// The HTTP status of the answer (not used for decisions).
        status: u16,
        /// Meta's error object.
        error: Box<MetaError>,
    },

    /// The request did not complete: connection refused, DNS, TLS, timeout, reset.
    #[error("{operation}: could not reach the Graph API: {reason}")]
    Transport {
        /// What the client was doing.
        operation: &'static str,
        /// What failed (no URL, no token).
        reason: String,
        /// True when the request timed out.
        timed_out: bool,
        /// False only when the connection was never made, so Meta cannot have acted on it.
        /// A send that failed with `true` may have been accepted: reconcile before resending.
        may_have_reached_meta: bool,
    },

    /// An HTTP error whose body is not a Meta error object (a proxy page, a gateway error).
    #[error("{operation}: HTTP {status} without a Meta error object: {body}")]
    Http {
        /// What the client was doing.
        operation: &'static str,
        /// The HTTP status.
        status: u16,
        /// The start of the body, for the log.
        body: String,
    },

    /// A successful answer could not be read.
    #[error("{operation}: unexpected answer from the Graph API: {reason}")]
    Decode {
        /// What the client was doing.
        operation: &'static str,
        /// What was wrong with it.
        reason: String,
    },
}

impl WhatsAppError {
    /// What to do about this error.
    pub fn disposition(&self) -> Disposition {
        match self {
            WhatsAppError::Meta { error, .. } => error.disposition(),
            WhatsAppError::Transport { .. } => RetryNow,
            WhatsAppError::Http { status, .. } => match status {
                401 | 403 => PauseAccount,
                429 => RetryLater,
                408 | 500..=599 => RetryNow,
                _ => Never,
            },
            WhatsAppError::Config(_) => PauseAccount,
            WhatsAppError::Media(e) if e.is_retryable() => RetryNow,
            WhatsAppError::Payload(_) | WhatsAppError::Media(_) | WhatsAppError::Decode { .. } => {
                Never
            }
        }
    }

    /// True when the same call may succeed if repeated later.
    ///
    /// For a send, a retryable [`WhatsAppError::Transport`] with `may_have_reached_meta` may
    /// already have been accepted by Meta: reconcile against status webhooks before resending.
    pub fn is_retryable(&self) -> bool {
        self.disposition().is_retryable()
    }

    /// A suggested first delay before retrying.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            WhatsAppError::Meta { error, .. } => error.info().retry_after,
            WhatsAppError::Transport { .. } => Some(Duration::from_secs(5)),
            WhatsAppError::Http { status: 429, .. } => Some(Duration::from_secs(60)),
            _ if self.is_retryable() => Some(Duration::from_secs(10)),
            _ => None,
        }
    }

    /// Meta's error object, when Meta answered with one.
    pub fn meta(&self) -> Option<&MetaError> {
        match self {
            WhatsAppError::Meta { error, .. } => Some(error),
            _ => None,
        }
    }

    /// Meta's error code, when Meta answered with one.
    pub fn code(&self) -> Option<i64> {
        self.meta().map(|e| e.code)
    }

    /// Meta's code as text, else a word for what failed (`http_502`, `transport`, `timeout`,
    /// `decode`, `payload`, `media`, `config`): a bounded metrics label.
    pub fn metric_code(&self) -> String {
        match self {
            WhatsAppError::Meta { error, .. } => error.code.to_string(),
            WhatsAppError::Transport {
                timed_out: true, ..
            } => "timeout".into(),
            WhatsAppError::Transport { .. } => "transport".into(),
            WhatsAppError::Http { status, .. } => format!("http_{status}"),
            WhatsAppError::Decode { .. } => "decode".into(),
            WhatsAppError::Payload(_) => "payload".into(),
            WhatsAppError::Media(_) => "media".into(),
            WhatsAppError::Config(_) => "config".into(),
        }
    }

    /// A plain-words explanation for people (`error_help`).
    pub fn help(&self) -> String {
        self.help_in(Lang::En)
    }

    /// [`WhatsAppError::help`] in `lang` (the inner reasons stay as written).
    pub fn help_in(&self, lang: Lang) -> String {
        match self {
            WhatsAppError::Meta { error, .. } => error.help_in(lang),
            WhatsAppError::Payload(e) => match lang {
                Lang::En => format!(
                    "The message breaks a WhatsApp limit and was not sent: {e}. Change the \
                     content and send again."
                ),
                Lang::Fr => format!(
                    "Le message dépasse une limite de WhatsApp et n'a pas été envoyé : {e}. \
                     Modifiez le contenu et renvoyez."
                ),
            },
            WhatsAppError::Media(e) => match lang {
                Lang::En => format!("The file cannot be sent: {e}."),
                Lang::Fr => format!("Le fichier ne peut pas être envoyé : {e}."),
            },
            WhatsAppError::Config(e) => match lang {
                Lang::En => format!(
                    "The WhatsApp account settings cannot work: {e}. Fix them in WhatsApp > \
                     Configuration."
                ),
                Lang::Fr => format!(
                    "Les paramètres du compte WhatsApp ne peuvent pas fonctionner : {e}. \
                     Corrigez-les dans WhatsApp > Configuration."
                ),
            },
            WhatsAppError::Transport {
                reason,
                may_have_reached_meta,
                ..
            } => {
                let mut s = match lang {
                    Lang::En => format!(
                        "The Graph API could not be reached ({reason}). It is retried \
                         automatically; check the network, proxy and the configured Graph API \
                         URL if it lasts."
                    ),
                    Lang::Fr => format!(
                        "La Graph API n'a pas pu être jointe ({reason}). Elle est réessayée \
                         automatiquement ; vérifiez le réseau, le proxy et l'URL de la Graph API \
                         configurée si cela dure."
                    ),
                };
                if *may_have_reached_meta {
                    s.push_str(lang.pick(
                        " The request may have reached Meta, so a send is checked against \
                         delivery reports before it is repeated.",
                        " La requête a peut-être atteint Meta : un envoi est donc vérifié \
                         auprès des accusés de remise avant d'être répété.",
                    ));
                }
                s
            }
            WhatsAppError::Http { status, .. } => {
                let next = match (self.is_retryable(), lang) {
                    (true, Lang::En) => "It is retried automatically.",
                    (false, Lang::En) => "Check the configured Graph API URL.",
                    (true, Lang::Fr) => "Elle est réessayée automatiquement.",
                    (false, Lang::Fr) => "Vérifiez l'URL de la Graph API configurée.",
                };
                match lang {
                    Lang::En => format!(
                        "The Graph API answered HTTP {status} without a WhatsApp error, which \
                         usually means a proxy or gateway in between failed, or the Graph API \
                         URL points to something else. {next}"
                    ),
                    Lang::Fr => format!(
                        "La Graph API a répondu HTTP {status} sans erreur WhatsApp, ce qui \
                         signifie le plus souvent qu'un proxy ou une passerelle entre les deux a \
                         échoué, ou que l'URL de la Graph API désigne autre chose. {next}"
                    ),
                }
            }
            WhatsAppError::Decode { reason, .. } => match lang {
                Lang::En => format!(
                    "The Graph API answered in an unexpected shape ({reason}). The message is \
                     not repeated automatically because Meta may have accepted it; check the \
                     delivery reports."
                ),
                Lang::Fr => format!(
                    "La Graph API a répondu sous une forme inattendue ({reason}). Le message \
                     n'est pas répété automatiquement car Meta l'a peut-être accepté ; vérifiez \
                     les accusés de remise."
                ),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every row of the fact sheet's table (section 5), with the expected decision.
    const TABLE: &[(i64, Disposition)] = &[
        (0, PauseAccount),
        (190, PauseAccount),
        (3, PauseAccount),
        (10, PauseAccount),
        (200, PauseAccount),
        (250, PauseAccount),
        (299, PauseAccount),
        (4, RetryLater),
        (80007, RetryLater),
        (130429, RetryNow),
        (131056, RetryRecipientLater),
        (131048, RetryLater),
        (131049, RetryLater),
        (131050, Never),
        (131047, Never),
        (470, Never),
        (131026, Never),
        (131051, Never),
        (131052, Never),
        (131053, Never),
        (131000, RetryNow),
        (131016, RetryNow),
        (1, RetryNow),
        (2, RetryNow),
        (131057, RetryLater),
        (100, Never),
        (131008, Never),
        (131009, Never),
        (131021, Never),
        (131030, Never),
        (131031, PauseAccount),
        (131042, PauseAccount),
        (132000, Never),
        (132001, Never),
        (132005, Never),
        (132007, Never),
        (132012, Never),
        (132015, RetryLater),
        (132016, Never),
        (133010, PauseAccount),
        (368, PauseAccount),
        (130497, Never),
        (130472, Never),
    ];

    #[test]
    fn every_code_in_the_fact_sheet_table_is_classified() {
        for &(code, expected) in TABLE {
            let i = classify(code, None);
            assert_eq!(i.disposition, expected, "code {code}");
            assert!(i.known, "code {code} should be known");
            assert!(!i.help.is_empty(), "code {code} needs help text");
            assert_eq!(
                i.disposition.is_retryable(),
                i.retry_after.is_some(),
                "code {code}: retryable codes carry a delay, others none"
            );
        }
    }

    #[test]
    fn every_code_is_explained_in_french_too() {
        for (code, _) in TABLE {
            let i = classify(*code, None);
            assert!(!i.help_fr.is_empty(), "code {code} needs French help text");
            assert_ne!(
                i.help, i.help_fr,
                "code {code}: the French text is not translated"
            );
            assert_eq!(i.help_in(Lang::En), i.help);
        }
        let e = MetaError::for_code(131047, "Re-engagement message", "trace-9");
        assert_eq!(e.help(), e.help_in(Lang::En));
        let aide = e.help_in(Lang::Fr);
        assert!(
            aide.starts_with("Plus de 24 heures se sont écoulées"),
            "{aide}"
        );
        assert!(
            aide.contains("Meta indique : Re-engagement message (fbtrace_id trace-9)"),
            "{aide}"
        );
        let unknown = MetaError::new(999999, "whatever").help_in(Lang::Fr);
        assert!(unknown.contains("que ce démon ne connaît pas"), "{unknown}");
        let lost = WhatsAppError::Transport {
            operation: "send message",
            reason: "timed out".into(),
            timed_out: true,
            may_have_reached_meta: true,
        };
        assert!(lost.help_in(Lang::Fr).contains("a peut-être atteint Meta"));
        assert!(lost.help_in(Lang::En).contains("may have reached Meta"));
    }

    #[test]
    fn retry_delays_follow_the_fact_sheet() {
        assert_eq!(
            classify(131056, None).retry_after,
            Some(Duration::from_secs(6))
        );
        assert!(classify(130429, None).retry_after.unwrap() < Duration::from_secs(10));
        assert!(classify(4, None).retry_after.unwrap() >= Duration::from_secs(60));
        assert_eq!(
            classify(132015, None).retry_after,
            Some(Duration::from_secs(3 * 3600))
        );
    }

    #[test]
    fn subcode_33_on_code_100_is_a_wrong_id_and_pauses_the_account() {
        assert_eq!(classify(100, Some(33)).disposition, PauseAccount);
        assert_eq!(classify(100, Some(2494010)).disposition, Never);
        assert!(classify(100, Some(33)).help.contains("phone number ID"));
    }

    #[test]
    fn range_edges_of_permission_codes() {
        assert!(!classify(199, None).known);
        assert!(!classify(300, None).known);
        assert_eq!(classify(199, None).disposition, Never);
    }

    #[test]
    fn unknown_codes_are_never_retried_and_explained() {
        let e = MetaError::new(999_999, "(#999999) Brand new thing").with_details("whatever");
        assert_eq!(e.disposition(), Never);
        assert!(!e.info().known);
        let help = e.help();
        assert!(help.contains("999999"), "{help}");
        assert!(help.contains("does not know"), "{help}");
        assert!(help.contains("Meta says: whatever"), "{help}");
    }

    #[test]
    fn campaign_pausing_codes() {
        assert!(classify(131048, None).pauses_campaign);
        assert!(classify(132015, None).pauses_campaign);
        assert!(!classify(131056, None).pauses_campaign);
    }

    #[test]
    fn parses_the_fact_sheet_error_shape() {
        let body = r#"{"error":{"message":"(#131056) (Business Account, Consumer Account) pair rate limit hit","type":"OAuthException",
 "code":131056,"error_data":{"messaging_product":"whatsapp","details":"Message failed to send because there were too many messages sent from this phone number to the same phone number in a short period of time."},
 "fbtrace_id":"AbCdEf"}}"#;
        let env: ErrorEnvelope = serde_json::from_str(body).unwrap();
        let e = env.error;
        assert_eq!(e.code, 131056);
        assert_eq!(e.kind.as_deref(), Some("OAuthException"));
        assert_eq!(e.fbtrace_id.as_deref(), Some("AbCdEf"));
        assert!(e.details().unwrap().starts_with("Message failed"));
        assert_eq!(e.disposition(), RetryRecipientLater);
        let shown = e.to_string();
        assert!(
            shown.contains("131056") && shown.contains("AbCdEf"),
            "{shown}"
        );
        assert!(e.help().contains("same recipient"));
    }

    #[test]
    fn errors_built_for_a_code_read_back_the_same() {
        let e = MetaError::for_code(131047, "more than 24 hours", "Atrace");
        let body = e.to_response_body();
        assert_eq!(body["error"]["code"], 131047);
        assert_eq!(
            body["error"]["message"],
            "(#131047) Outside the 24-hour window"
        );
        assert_eq!(body["error"]["error_data"]["details"], "more than 24 hours");
        assert_eq!(body["error"]["fbtrace_id"], "Atrace");
        let back: ErrorEnvelope = serde_json::from_value(body).unwrap();
        assert_eq!(back.error, e);
    }

    #[test]
    fn error_data_as_a_string() {
        let e: MetaError =
            serde_json::from_str(r#"{"code":100,"error_data":"Invalid parameter"}"#).unwrap();
        assert_eq!(e.details(), Some("Invalid parameter"));
    }

    #[test]
    fn lenient_codes() {
        let e: MetaError = serde_json::from_str(r#"{"code":"190","error_subcode":"463"}"#).unwrap();
        assert_eq!(e.code, 190);
        assert_eq!(e.error_subcode, Some(463));
        let e: MetaError = serde_json::from_str(r#"{"message":"x"}"#).unwrap();
        assert_eq!(e.code, -1);
        assert_eq!(e.disposition(), Never);
        let e: MetaError = serde_json::from_str(r#"{"code":[1],"error_subcode":{}}"#).unwrap();
        assert_eq!(e.code, -1);
        assert_eq!(e.error_subcode, None);
    }

    #[test]
    fn boundary_error_dispositions() {
        let meta = WhatsAppError::Meta {
            operation: "send message",
            status: 400,
            error: Box::new(MetaError::new(130429, "throughput")),
        };
        assert!(meta.is_retryable());
        assert_eq!(meta.code(), Some(130429));
        // decided on the code, not on the status: a 400 that is a rate limit is retried and a
        // 500 carrying code 100 is not
        let meta500 = WhatsAppError::Meta {
            operation: "send message",
            status: 500,
            error: Box::new(MetaError::new(100, "bad")),
        };
        assert!(!meta500.is_retryable());
        let t = WhatsAppError::Transport {
            operation: "send message",
            reason: "connection refused".into(),
            timed_out: false,
            may_have_reached_meta: false,
        };
        assert!(t.is_retryable());
        let h = WhatsAppError::Http {
            operation: "send message",
            status: 502,
            body: "<html>".into(),
        };
        assert!(h.is_retryable());
        let h = WhatsAppError::Http {
            operation: "send message",
            status: 404,
            body: "nope".into(),
        };
        assert!(!h.is_retryable());
        let d = WhatsAppError::Decode {
            operation: "send message",
            reason: "no id".into(),
        };
        assert!(!d.is_retryable());
        assert!(d.help().contains("may have accepted"));
    }
}
