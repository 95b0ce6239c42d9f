//! The stand-in's models and fields, written as a small text table parsed at start-up.
//!
//! Each `model` line opens a model (`name "Description" order="..." [thread] [activity]
//! [rec=field]`: `thread` for a mail.thread, `activity` for a mail.activity.mixin); indented
//! lines declare fields (`name type [req] [ro] [tr] [default=...] [string="Label"]
//! [ondelete=cascade|restrict] [related=path]`: `tr` for `translate=True`) and SQL unique
//! constraints
//! (`unique <name> <field,field> "message"`). Types: `char text html int float monetary bool
//! date datetime binary ref` (many2one_reference), `sel:value=Label,...`, `sel_any` (a selection
//! whose values are not checked, such as time zones), `m2o:model`, `o2m:model,inverse`,
//! `m2m:model`.
//!
//! The `whatsapp.*` models and the `x_whatsapp_*`/`whatsapp_*` fields follow the addon
//! (`odoo_addon/whatsapp_sidecar/models/*.py`, stored fields only); `tests/odoo_standin_schema.rs`
//! checks they still match. The core models carry the fields the daemon and the recorded
//! transcripts use, with Odoo 17's labels.

use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

pub const SCHEMA: &str = r#"
model res.partner "Contact" order="complete_name asc, id desc" thread activity rec=name
  name char
  complete_name char string="Complete Name"
  parent_id m2o:res.partner string="Related Company"
  child_ids o2m:res.partner,parent_id string="Contact"
  is_company bool string="Is a Company"
  active bool default=true
  type sel:"contact=Contact,invoice=Invoice Address,delivery=Delivery Address,other=Other Address" default=contact string="Address Type"
  ref char string="Reference"
  email char
  phone char
  mobile char
  street char
  city char
  zip char
  country_id m2o:res.country string="Country"
  company_id m2o:res.company string="Company"
  lang sel:"en_US=English (US),fr_FR=French / Français" default=en_US string="Language"
  tz sel_any string="Timezone"
  comment html string="Notes"
  commercial_partner_id m2o:res.partner ro string="Commercial Entity"
  category_id m2m:res.partner.category string="Tags"
  user_id m2o:res.users string="Salesperson"
  vat char string="Tax ID"
  whatsapp_opt_in bool string="WhatsApp opt-in"
  whatsapp_opt_in_date datetime string="WhatsApp opt-in date"
  whatsapp_opt_in_source sel:"manual=Manual,whatsapp=WhatsApp,form=Web form,import=Import,other=Other" string="WhatsApp opt-in source"
  whatsapp_opt_out_date datetime string="WhatsApp opt-out date"
  whatsapp_number_e164 char string="WhatsApp number (E.164)"

model res.partner.category "Partner Tags" order="name" rec=name
  name char req string="Tag Name"
  color int string="Color"
  parent_id m2o:res.partner.category string="Parent Category"
  active bool default=true

model res.company "Companies" order="sequence, name" rec=name
  name char req string="Company Name"
  sequence int default=10
  partner_id m2o:res.partner string="Partner"
  currency_id m2o:res.currency string="Currency"
  country_id m2o:res.country string="Country"
  email char
  phone char

model res.country "Country" order="name" rec=name
  name char req string="Country Name"
  code char string="Country Code"
  phone_code int string="Country Calling Code"
  unique name_uniq name "The name of the country must be unique!"
  unique code_uniq code "The code of the country must be unique!"

model res.currency "Currency" order="active desc, name" rec=name
  name char req string="Currency"
  symbol char req string="Symbol"
  position sel:"after=After Amount,before=Before Amount" default=after string="Symbol Position"
  decimal_places int ro string="Decimal Places"
  rounding float default=0.01 string="Rounding Factor"
  active bool default=true

model res.lang "Languages" order="active desc,name" rec=name
  name char req
  code char req string="Locale Code"
  active bool
  date_format char req string="Date Format"
  decimal_point char req string="Decimal Separator"
  thousands_sep char string="Thousands Separator"
  grouping char req string="Separator Format"

model res.users "User" order="name, login" rec=name
  name char string="Name"
  login char req string="Login"
  partner_id m2o:res.partner req ondelete=restrict string="Related Partner"
  company_id m2o:res.company req default=company string="Company"
  tz sel_any string="Timezone"
  lang sel:"en_US=English (US),fr_FR=French / Français" default=en_US string="Language"
  signature html string="Email Signature"
  active bool default=true
  share bool string="Share User"
  groups_id m2m:res.groups string="Groups"
  company_ids m2m:res.company string="Companies"
  unique login_key login "You can not have two users with the same login!"

model res.groups "Access Groups" order="name" rec=name
  name char req string="Name"

model sale.order "Sales Order" order="date_order desc, id desc" thread activity rec=name
  name char req string="Order Reference"
  partner_id m2o:res.partner req ondelete=restrict string="Customer"
  state sel:"draft=Quotation,sent=Quotation Sent,sale=Sales Order,cancel=Cancelled" default=draft string="Status"
  date_order datetime req default=now string="Order Date"
  validity_date date string="Expiration"
  commitment_date datetime string="Delivery Date"
  client_order_ref char string="Customer Reference"
  origin char string="Source Document"
  note html string="Terms and conditions"
  locked bool string="Locked"
  access_token char string="Security Token"
  company_id m2o:res.company req default=company string="Company"
  currency_id m2o:res.currency string="Currency"
  user_id m2o:res.users default=uid string="Salesperson"
  partner_invoice_id m2o:res.partner req string="Invoice Address"
  partner_shipping_id m2o:res.partner req string="Delivery Address"
  amount_untaxed monetary string="Untaxed Amount"
  amount_tax monetary string="Taxes"
  amount_total monetary string="Total"
  invoice_status sel:"upselling=Upselling Opportunity,invoiced=Fully Invoiced,to invoice=To Invoice,no=Nothing to Invoice" string="Invoice Status"
  invoice_ids m2m:account.move string="Invoices"
  order_line o2m:sale.order.line,order_id string="Order Lines"
  x_whatsapp_creation_sent bool ro string="WhatsApp creation message sent"
  x_whatsapp_creation_sent_date datetime ro string="WhatsApp creation message date"
  x_whatsapp_validated bool ro string="Validated on WhatsApp"
  x_whatsapp_rejected bool ro string="Rejected on WhatsApp"
  x_whatsapp_validation_sent bool ro string="WhatsApp validation sent"
  x_whatsapp_validation_sent_date datetime ro string="WhatsApp validation date"
  x_whatsapp_details_sent bool ro string="WhatsApp details sent"
  x_whatsapp_details_sent_date datetime ro string="WhatsApp details date"
  x_whatsapp_details_requested_at datetime ro string="WhatsApp: details requested"

model sale.order.line "Sales Order Line" order="order_id, sequence, id" rec=name
  order_id m2o:sale.order req ondelete=cascade string="Order Reference"
  sequence int default=10
  name text req string="Description"
  display_type sel:"line_section=Section,line_note=Note" string="Display Type"
  product_uom_qty float default=1.0 string="Quantity"
  price_unit float string="Unit Price"
  price_subtotal monetary ro string="Subtotal"
  company_id m2o:res.company related=order_id.company_id

model account.move "Journal Entry" order="date desc, name desc, id desc" thread activity rec=name
  name char string="Number"
  move_type sel:"entry=Journal Entry,out_invoice=Customer Invoice,out_refund=Customer Credit Note,in_invoice=Vendor Bill,in_refund=Vendor Credit Note,out_receipt=Sales Receipt,in_receipt=Purchase Receipt" req default=entry string="Type"
  state sel:"draft=Draft,posted=Posted,cancel=Cancelled" req default=draft string="Status"
  payment_state sel:"not_paid=Not Paid,in_payment=In Payment,paid=Paid,partial=Partially Paid,reversed=Reversed,invoicing_legacy=Invoicing App Legacy" default=not_paid string="Payment Status"
  partner_id m2o:res.partner ondelete=restrict string="Partner"
  date date req default=today string="Date"
  invoice_date date string="Invoice/Bill Date"
  invoice_date_due date string="Due Date"
  invoice_origin char string="Origin"
  ref char string="Reference"
  amount_untaxed monetary string="Untaxed Amount"
  amount_tax monetary string="Tax"
  amount_total monetary string="Total"
  amount_residual monetary string="Amount Due"
  currency_id m2o:res.currency req default=1 string="Currency"
  company_id m2o:res.company default=company string="Company"
  access_token char string="Security Token"
  invoice_line_ids o2m:account.move.line,move_id string="Invoice lines"
  x_whatsapp_posted_at datetime ro string="WhatsApp: posted at"
  x_whatsapp_details_requested_at datetime ro string="WhatsApp: details requested"
  x_whatsapp_last_residual_at datetime ro string="WhatsApp: last residual recorded"
  x_whatsapp_invoice_sent bool ro string="Invoice sent on WhatsApp"
  x_whatsapp_invoice_sent_date datetime ro string="Invoice WhatsApp date"
  x_whatsapp_residual_sent bool ro string="Residual sent on WhatsApp"
  x_whatsapp_residual_sent_date datetime ro string="Residual WhatsApp date"
  x_whatsapp_last_residual_notified monetary ro string="Last residual notified"
  x_whatsapp_unpaid_reminder_sent bool ro string="Unpaid reminder sent"
  x_whatsapp_unpaid_reminder_sent_date datetime ro string="Unpaid reminder date"
  x_whatsapp_unpaid_reminder_count int ro string="Unpaid reminders"

model account.move.line "Journal Item" order="date desc, move_name desc, id" rec=name
  move_id m2o:account.move req ondelete=cascade string="Journal Entry"
  move_name char string="Number"
  date date default=today string="Date"
  sequence int default=10
  name char string="Label"
  display_type sel:"product=Product,cogs=Cost of Goods Sold,tax=Tax,discount=Discount,rounding=Rounding,payment_term=Payment Term,line_section=Section,line_note=Note,epd=Early Payment Discount" req default=product string="Display Type"
  quantity float default=1.0 string="Quantity"
  price_unit float string="Unit Price"
  price_subtotal monetary ro string="Subtotal"
  company_id m2o:res.company related=move_id.company_id

model payment.link.wizard "Generate Payment Link" order="id"
  res_model char req string="Related Document Model"
  res_id int req string="Related Document ID"
  amount monetary req string="Amount"
  amount_max monetary string="Amount Max"
  currency_id m2o:res.currency string="Currency"
  partner_id m2o:res.partner string="Partner"
  link char ro string="Payment Link"
  warning_message char ro string="Warning Message"

model ir.module.module "Module" order="name" rec=name
  name char req ro string="Technical Name"
  shortdesc char ro string="Module Name"
  state sel:"uninstallable=Uninstallable,uninstalled=Not Installed,installed=Installed,to upgrade=To be upgraded,to remove=To be removed,to install=To be installed" default=uninstalled ro string="Status"
  latest_version char ro string="Installed Version"
  installed_version char ro string="Latest Version"

model ir.model.data "Model Data" order="module, model, name" rec=name
  name char req string="External Identifier"
  module char req string="Module"
  model char req string="Model Name"
  res_id ref string="Record ID"
  noupdate bool string="Non Updatable"

model ir.model "Models" order="model" rec=name
  name char req string="Model Description"
  model char req string="Model"
  is_mail_thread bool string="Has Mail Thread"
  is_mail_activity bool string="Has Mail Activity"
  unique obj_name_uniq model "Each model must have a unique name."

model ir.attachment "Attachment" order="id desc" rec=name
  name char req string="Name"
  type sel:"url=URL,binary=File" req default=binary string="Type"
  datas binary string="File Content (base64)"
  url char string="Url"
  mimetype char string="Mime Type"
  res_model char string="Resource Model"
  res_id ref string="Resource ID"
  res_name char string="Resource Name"
  file_size int ro string="File Size"
  checksum char ro string="Checksum/SHA1"
  company_id m2o:res.company string="Company"
  public bool string="Is public document"

model mail.message.subtype "Message subtypes" order="sequence, id" rec=name
  name char req string="Message Type"
  sequence int default=1
  internal bool string="Internal Only"
  description text string="Description"

model mail.message "Message" order="id desc" rec=record_name
  subject char string="Subject"
  body html string="Contents"
  model char string="Related Document Model"
  res_id ref string="Related Document ID"
  record_name char string="Message Record Name"
  message_type sel:"email=Incoming Email,comment=Comment,email_outgoing=Outgoing Email,notification=System notification,auto_comment=Automated Targeted Notification,user_notification=User Specific Notification" req default=comment string="Type"
  subtype_id m2o:mail.message.subtype string="Subtype"
  author_id m2o:res.partner string="Author"
  date datetime default=now string="Date"
  email_from char string="From"
  partner_ids m2m:res.partner string="Recipients"
  attachment_ids m2m:ir.attachment string="Attachments"

model mail.activity.type "Activity Type" order="sequence, id" rec=name
  name char req string="Name"
  summary char string="Default Summary"
  sequence int default=10 string="Sequence"
  active bool default=true
  res_model char string="Model"

model mail.activity "Activity" order="date_deadline ASC, id ASC" rec=summary
  res_model_id m2o:ir.model req ondelete=cascade string="Document Model"
  res_model char related=res_model_id.model string="Related Document Model"
  res_id ref string="Related Document ID"
  activity_type_id m2o:mail.activity.type ondelete=restrict string="Activity Type"
  summary char string="Summary"
  note html string="Note"
  date_deadline date req default=today string="Due Date"
  automated bool ro string="Automated activity"
  user_id m2o:res.users req default=uid ondelete=cascade string="Assigned to"
  active bool default=true

model whatsapp.account "WhatsApp Account" order="is_default desc, name, id" thread rec=name
  name char req
  active bool default=true
  company_id m2o:res.company req default=company
  is_default bool string="Default for the company"
  phone_number_id char req string="Phone number ID"
  waba_id char req string="WhatsApp Business Account ID"
  access_token char
  app_secret char
  verify_token char
  graph_api_version char req default=v26.0 string="Graph API version"
  throughput_mps int req default=80 string="Throughput (messages/s)"
  display_phone_number char ro
  verified_name char ro
  quality_rating sel:"green=High (green),yellow=Medium (yellow),red=Low (red),unknown=Unknown" ro
  messaging_limit char ro
  last_check_at datetime ro
  last_check_ok bool ro
  last_check_message text ro
  last_sync_at datetime ro string="Last template sync"
  check_requested bool
  sync_requested bool
  paused bool
  paused_reason text
  paused_at datetime ro
  auto_send_order_creation bool string="Send new sale orders"
  order_creation_enabled_at datetime ro string="New orders sent since"
  order_details_pdf bool default=true string="Attach the PDF to order details"
  auto_send_invoice_posted bool string="Send posted invoices"
  invoice_posted_enabled_at datetime ro string="Posted invoices sent since"
  invoice_details_pdf bool default=true string="Attach the PDF to invoice details"
  auto_send_residual_change bool string="Send residual amount changes"
  residual_change_min_amount float default=0.0 string="Minimum residual change"
  residual_debounce_minutes float default=10.0 string="Merge payments within (minutes)"
  auto_send_unpaid_invoices bool string="Send unpaid invoice reminders"
  unpaid_invoice_days int default=7 string="Overdue days before a reminder"
  unpaid_reminder_interval_days int default=7 string="Days between reminders"
  unpaid_reminder_schedule char req default="0 9 * * *" string="Reminder schedule"
  unpaid_reminder_tz sel_any string="Reminder time zone"
  template_order_creation_id m2o:whatsapp.template string="Template for new orders"
  template_invoice_posted_id m2o:whatsapp.template string="Template for posted invoices"
  template_residual_change_id m2o:whatsapp.template string="Template for residual changes"
  template_unpaid_invoice_id m2o:whatsapp.template string="Template for unpaid reminders"
  template_generic_id m2o:whatsapp.template string="Generic template"
  template_document_id m2o:whatsapp.template string="Template for documents"
  default_media_url char string="Default media URL"
  opt_out_keywords char default="STOP,ARRET,ARRÊT,UNSUBSCRIBE"
  opt_out_confirmation text tr default="You will no longer receive WhatsApp messages from us."
  inbound_notification sel:"none=No notification,activity=Activity,message=Discuss message" req default=activity string="Notify when a customer writes"
  responsible_user_id m2o:res.users string="Responsible"
  template_ids o2m:whatsapp.template,account_id
  default_reply_enabled bool string="Default reply"
  welcome_scenario_id m2o:whatsapp.interactive.scenario string="Welcome scenario"
  unique phone_number_id_uniq phone_number_id "Another WhatsApp account already uses this phone number ID."

model whatsapp.template "WhatsApp Template" order="name, language, id" rec=name
  name char req
  language char req default=en_US
  active bool default=true
  account_id m2o:whatsapp.account req ondelete=cascade
  company_id m2o:res.company related=account_id.company_id
  meta_template_id char ro
  category sel:"marketing=Marketing,utility=Utility,authentication=Authentication" default=utility
  status sel:"approved=Approved,pending=Pending,rejected=Rejected,paused=Paused,disabled=Disabled,in_appeal=In appeal,pending_deletion=Pending deletion,deleted=Deleted,archived=Archived,limit_exceeded=Limit exceeded" req default=pending
  rejected_reason char
  quality_rating sel:"green=High (green),yellow=Medium (yellow),red=Low (red),unknown=Unknown" default=unknown
  parameter_format sel:"positional=Positional ({{1}}),named=Named ({{name}})" req default=positional
  components_json text
  header_type sel:"none=None,text=Text,image=Image,video=Video,document=Document,location=Location"
  header_text char
  body_text text
  footer_text char
  buttons_json text string="Buttons (JSON)"
  button_count int
  components_error char
  variable_ids o2m:whatsapp.template.variable,template_id string="Variables"
  last_sync_at datetime ro
  unique name_language_account_uniq account_id,name,language "This account already has a template with this name and language."

model whatsapp.template.variable "WhatsApp Template Variable" order="template_id, component, sequence, id" rec=name
  template_id m2o:whatsapp.template req ondelete=cascade
  sequence int default=10
  name char req
  component sel:"header=Header,body=Body,button=Button" req default=body
  button_index int
  field_path char
  fixed_value char

model whatsapp.conversation "WhatsApp Conversation" order="last_inbound_at desc, id desc" thread activity rec=wa_id
  account_id m2o:whatsapp.account req ondelete=restrict
  company_id m2o:res.company related=account_id.company_id
  wa_id char string="WhatsApp ID"
  user_id char string="Business-scoped user ID"
  partner_id m2o:res.partner
  profile_name char
  last_inbound_at datetime ro
  last_notified_at datetime ro string="Last notification"
  window_expires_at datetime
  whatsapp_message_ids o2m:whatsapp.message,conversation_id string="WhatsApp messages"
  scenario_id m2o:whatsapp.interactive.scenario ro string="Current menu"
  scenario_started_at datetime ro string="Menu sent at"
  default_reply_at datetime ro string="Default reply sent at"
  unique account_wa_id_uniq account_id,wa_id "This account already has a conversation with this WhatsApp ID."
  unique account_user_id_uniq account_id,user_id "This account already has a conversation with this business-scoped user ID."

model whatsapp.message "WhatsApp Message" order="id desc"
  account_id m2o:whatsapp.account ondelete=restrict
  company_id m2o:res.company req default=company
  conversation_id m2o:whatsapp.conversation
  partner_id m2o:res.partner
  direction sel:"in=Inbound,out=Outbound" req default=out
  message_type sel:"text=Text,template=Template,image=Image,document=Document,video=Video,audio=Audio,sticker=Sticker,location=Location,contacts=Contacts,interactive=Interactive,reaction=Reaction,button=Template button reply,order=Order,system=System,request_welcome=Welcome request,unsupported=Unsupported" req default=text string="Type"
  state sel:"queued=Queued,sending=Sending,sent=Sent,delivered=Delivered,read=Read,failed=Failed,cancelled=Cancelled,received=Received" req default=queued
  trigger sel:"manual=Manual,order_creation=New sale order,order_details=Sale order details,order_validation=Sale order validation,invoice_posted=Posted invoice,invoice_details=Invoice details,residual_change=Residual change,unpaid_reminder=Unpaid reminder,campaign=Campaign,scenario=Scenario,button_action=Button action,opt_out=Opt-out confirmation" default=manual
  to_number char
  to_e164 char string="E.164 number"
  wa_id char string="WhatsApp ID"
  wamid char ro string="WhatsApp message ID"
  body text
  original_body text string="Original wording"
  original_message_type sel:"text=Text,template=Template,image=Image,document=Document,video=Video,audio=Audio,sticker=Sticker,location=Location,contacts=Contacts,interactive=Interactive,reaction=Reaction,button=Template button reply,order=Order,system=System,request_welcome=Welcome request,unsupported=Unsupported" string="Original type"
  template_id m2o:whatsapp.template ondelete=restrict
  template_params_json text string="Template parameters (JSON)"
  header_params_json text string="Header parameters (JSON)"
  media_attachment_id m2o:ir.attachment
  media_url char string="Media URL"
  media_id char string="Meta media ID"
  media_filename char
  media_mime_type char string="Media MIME type"
  report_name char
  interactive_json text string="Interactive content (JSON)"
  reply_to_wamid char string="Reply to"
  res_model char string="Source model"
  res_id ref string="Source record ID"
  campaign_id m2o:whatsapp.campaign
  campaign_step_id m2o:whatsapp.campaign.step
  campaign_recipient_id m2o:whatsapp.campaign.recipient
  webhook_event_id m2o:whatsapp.webhook.event
  dedupe_key char
  priority int default=10
  attempt_count int
  next_attempt_at datetime
  claimed_at datetime
  callback_data char
  error_code char
  error_title char
  error_details text
  error_help text
  meta_response_json text
  queued_at datetime default=now
  sent_at datetime
  delivered_at datetime
  read_at datetime
  failed_at datetime
  cancelled_at datetime
  received_at datetime
  pricing_category char
  button_payload char
  button_title char
  action_state sel:"done=Done,refused=Refused,failed=Failed,ignored=No action" ro string="Button action"
  action_result text ro string="Button action result"
  action_id m2o:whatsapp.button.action ro string="Button action run"
  unique wamid_uniq wamid "Another message already has this WhatsApp message ID (wamid)."
  unique dedupe_key_uniq dedupe_key "A message with this deduplication key already exists: it was queued once already."

model whatsapp.webhook.event "WhatsApp Webhook Event" order="received_at desc, id desc" rec=received_at
  raw_body text req string="Raw payload"
  received_at datetime req default=now
  signature_ok bool string="Signature verified"
  processed bool
  processed_at datetime
  processing_error text
  attempt_count int
  account_id m2o:whatsapp.account
  event_field char string="Change field"
  message_ids o2m:whatsapp.message,webhook_event_id
  spool_key char ro

model whatsapp.campaign "WhatsApp Campaign" order="id desc" thread rec=name
  name char req
  active bool default=true
  company_id m2o:res.company req default=company
  account_id m2o:whatsapp.account ondelete=restrict
  state sel:"draft=Draft,scheduled=Scheduled,running=Running,paused=Paused,done=Done,cancelled=Cancelled" req default=draft
  user_id m2o:res.users default=uid
  partner_domain char default=[]
  partner_category_ids m2m:res.partner.category
  scheduled_at datetime
  send_window_start float default=9.0
  send_window_end float default=19.0
  send_on_weekends bool
  timezone_rule sel:"recipient=Recipient's time zone,company=Company's time zone" req default=recipient
  throttle_per_minute int default=60
  daily_cap int default=1000
  started_at datetime ro
  finished_at datetime ro
  paused_reason text
  queue_requested bool
  queue_generated_at datetime ro
  queue_message text ro string="Queue result"
  auto_resume_at datetime ro string="Resumes at"
  step_ids o2m:whatsapp.campaign.step,campaign_id
  recipient_ids o2m:whatsapp.campaign.recipient,campaign_id
  whatsapp_message_ids o2m:whatsapp.message,campaign_id
  kpi_recipients int ro
  kpi_sent int ro
  kpi_delivered int ro
  kpi_read int ro
  kpi_replied int ro
  kpi_failed int ro
  kpi_opted_out int ro
  kpi_updated_at datetime ro

model whatsapp.campaign.step "WhatsApp Campaign Step" order="campaign_id, sequence, id" rec=name
  campaign_id m2o:whatsapp.campaign req ondelete=cascade
  company_id m2o:res.company related=campaign_id.company_id
  sequence int default=10
  name char req
  delay_hours float default=0.0
  condition sel:"always=Always,not_read=Not read,not_replied=Not replied,read_not_replied=Read but not replied" req default=always
  message_type sel:"text=Text,template=Template,image=Image,document=Document,interactive=Interactive" req default=template
  template_id m2o:whatsapp.template ondelete=restrict
  body text
  media_url char
  media_attachment_id m2o:ir.attachment ondelete=restrict
  scenario_id m2o:whatsapp.interactive.scenario ondelete=restrict

model whatsapp.campaign.recipient "WhatsApp Campaign Recipient" order="campaign_id, next_due_at, id" rec=partner_id
  campaign_id m2o:whatsapp.campaign req ondelete=cascade
  company_id m2o:res.company related=campaign_id.company_id
  partner_id m2o:res.partner req ondelete=cascade
  phone_number char
  to_e164 char
  current_step_id m2o:whatsapp.campaign.step
  next_due_at datetime
  state sel:"pending=Pending,queued=Queued,sent=Sent,delivered=Delivered,read=Read,replied=Replied,failed=Failed,skipped=Skipped,opted_out=Opted out" req default=pending
  last_message_id m2o:whatsapp.message
  message_ids o2m:whatsapp.message,campaign_recipient_id
  replied_at datetime
  error_message text
  unique campaign_partner_uniq campaign_id,partner_id "A contact is in a campaign's queue only once."

model whatsapp.button.action "WhatsApp Button Action" order="sequence, id" rec=name
  name char req
  active bool default=true
  sequence int default=10
  company_id m2o:res.company default=company
  account_id m2o:whatsapp.account ondelete=cascade
  button_id char req
  match_type sel:"exact=Exact,prefix=Prefix" req default=exact
  action_type sel:"reply_text=Reply with a text,confirm_order=Confirm the order,cancel_order=Cancel the order,send_order_details=Send the order details,send_invoice=Send the invoice,send_payment_link=Send a payment link,start_scenario=Start a scenario,server_action=Run a server action,list_orders=List the customer's last orders,list_invoices=List the customer's open invoices" req default=reply_text
  reply_text text
  scenario_id m2o:whatsapp.interactive.scenario ondelete=restrict
  server_action_id m2o:ir.actions.server ondelete=restrict
  server_action_model char related=server_action_id.model_name string="Server action model"
  template_id m2o:whatsapp.template

model whatsapp.text "WhatsApp Customer Text" order="key, company_id, id" rec=name
  key char req
  name char req tr
  description text
  body text req tr
  placeholders char ro
  max_length int ro
  company_id m2o:res.company
  active bool default=true

model whatsapp.cursor "WhatsApp Daemon Cursor" order="name" rec=name
  name char req ro
  value char ro
  unique name_uniq name "The daemon keeps one cursor per name."

model whatsapp.lease "WhatsApp Daemon Lease" order="name" rec=name
  name char req ro
  holder char ro
  instance char ro
  epoch int ro
  taken_at datetime ro
  renewed_at datetime ro
  expires_at datetime ro
  unique name_uniq name "There is one lease per name."

model whatsapp.interactive.scenario "WhatsApp Interactive Scenario" order="sequence, name, id" rec=name
  name char req
  active bool default=true
  sequence int default=10
  company_id m2o:res.company default=company
  account_id m2o:whatsapp.account ondelete=cascade
  trigger_keywords char
  interaction_type sel:"buttons=Reply buttons (up to 3),list=List (up to 10 rows)" req default=buttons
  header_text char
  body text req
  footer_text char
  list_button_label char
  option_ids o2m:whatsapp.interactive.scenario.option,scenario_id

model whatsapp.interactive.scenario.option "WhatsApp Interactive Scenario Option" order="scenario_id, sequence, id" rec=title
  scenario_id m2o:whatsapp.interactive.scenario req ondelete=cascade
  sequence int default=10
  button_id char req
  title char req
  description char
  section_title char
  reply_text text
  next_scenario_id m2o:whatsapp.interactive.scenario
  button_action_id m2o:whatsapp.button.action

model ir.actions.server "Server Actions" order="sequence, name" rec=name
  name char req string="Action Name"
  sequence int default=5
  model_name char string="Model Name"
  state sel:"object_write=Update Record,object_create=Create Record,code=Execute Code,webhook=Send Webhook Notification,multi=Execute Existing Actions" req default=object_write string="Type"
  update_path char string="Field to Update Path"
  value text
  code text string="Python Code"
"#;

/// An Odoo field type.
#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    Char,
    Text,
    Html,
    Integer,
    Float,
    Monetary,
    Boolean,
    Date,
    Datetime,
    Binary,
    Reference,
    Selection {
        options: Vec<(String, String)>,
        checked: bool,
    },
    Many2one(String),
    One2many(String, String),
    Many2many(String),
}

impl Kind {
    /// The name `fields_get` gives.
    pub fn odoo_type(&self) -> &'static str {
        match self {
            Kind::Char => "char",
            Kind::Text => "text",
            Kind::Html => "html",
            Kind::Integer => "integer",
            Kind::Float => "float",
            Kind::Monetary => "monetary",
            Kind::Boolean => "boolean",
            Kind::Date => "date",
            Kind::Datetime => "datetime",
            Kind::Binary => "binary",
            Kind::Reference => "many2one_reference",
            Kind::Selection { .. } => "selection",
            Kind::Many2one(_) => "many2one",
            Kind::One2many(..) => "one2many",
            Kind::Many2many(_) => "many2many",
        }
    }

    pub fn comodel(&self) -> Option<&str> {
        match self {
            Kind::Many2one(m) | Kind::One2many(m, _) | Kind::Many2many(m) => Some(m),
            _ => None,
        }
    }

    pub fn is_relational(&self) -> bool {
        self.comodel().is_some()
    }

    pub fn is_x2many(&self) -> bool {
        matches!(self, Kind::One2many(..) | Kind::Many2many(_))
    }
}

/// How a default value is computed.
#[derive(Clone, Debug, PartialEq)]
pub enum Default {
    Value(Value),
    Now,
    Today,
    Uid,
    Company,
}

/// What happens to this many2one when the record it points at is deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnDelete {
    SetNull,
    Cascade,
    Restrict,
}

#[derive(Clone, Debug)]
pub struct Field {
    pub name: String,
    pub kind: Kind,
    pub string: String,
    pub required: bool,
    pub readonly: bool,
    pub default: Option<Default>,
    pub ondelete: OnDelete,
    /// `related=account_id.company_id`: recomputed on create and write.
    pub related: Option<Vec<String>>,
    /// `translate=True`: one value per language ([`super::orm::Db`] keeps the others).
    pub translate: bool,
}

#[derive(Clone, Debug)]
pub struct Unique {
    pub name: String,
    pub fields: Vec<String>,
    pub message: String,
}

#[derive(Clone, Debug)]
pub struct Model {
    pub name: String,
    pub description: String,
    pub order: String,
    pub rec_name: Option<String>,
    pub mail_thread: bool,
    /// A mail.activity.mixin: it has activities.
    pub activities: bool,
    /// Declared fields, in order (magic fields are added by the ORM).
    pub fields: Vec<Field>,
    pub index: BTreeMap<String, usize>,
    pub uniques: Vec<Unique>,
}

impl Model {
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.index.get(name).map(|&i| &self.fields[i])
    }

    pub fn has_active(&self) -> bool {
        self.index.contains_key("active")
    }

    /// The SQL table name.
    pub fn table(&self) -> String {
        self.name.replace('.', "_")
    }
}

/// Every model, by name.
#[derive(Clone, Debug)]
pub struct Schema {
    pub models: BTreeMap<String, Arc<Model>>,
}

impl Schema {
    pub fn model(&self, name: &str) -> Option<&Arc<Model>> {
        self.models.get(name)
    }
}

/// Odoo's default label: `partner_id` → `Partner`, `to_e164` → `To E164`.
fn default_string(name: &str) -> String {
    let base = name
        .strip_suffix("_ids")
        .or_else(|| name.strip_suffix("_id"))
        .unwrap_or(name);
    base.split('_')
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Splits on white space outside double quotes; the quotes are dropped.
fn tokens(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut has = false;
    for ch in line.chars() {
        match ch {
            '"' => {
                quoted = !quoted;
                has = true;
            }
            c if c.is_whitespace() && !quoted => {
                if has {
                    out.push(std::mem::take(&mut cur));
                    has = false;
                }
            }
            c => {
                cur.push(c);
                has = true;
            }
        }
    }
    if has {
        out.push(cur);
    }
    out
}

fn parse_kind(spec: &str) -> Result<Kind, String> {
    let (head, arg) = spec.split_once(':').unwrap_or((spec, ""));
    Ok(match head {
        "char" => Kind::Char,
        "text" => Kind::Text,
        "html" => Kind::Html,
        "int" => Kind::Integer,
        "float" => Kind::Float,
        "monetary" => Kind::Monetary,
        "bool" => Kind::Boolean,
        "date" => Kind::Date,
        "datetime" => Kind::Datetime,
        "binary" => Kind::Binary,
        "ref" => Kind::Reference,
        "sel_any" => Kind::Selection {
            options: Vec::new(),
            checked: false,
        },
        "sel" => Kind::Selection {
            options: arg
                .split(',')
                .map(|o| match o.split_once('=') {
                    Some((v, l)) => (v.to_owned(), l.to_owned()),
                    None => (o.to_owned(), default_string(o)),
                })
                .collect(),
            checked: true,
        },
        "m2o" => Kind::Many2one(arg.to_owned()),
        "m2m" => Kind::Many2many(arg.to_owned()),
        "o2m" => {
            let (m, inv) = arg
                .split_once(',')
                .ok_or_else(|| format!("o2m needs model,inverse: {spec}"))?;
            Kind::One2many(m.to_owned(), inv.to_owned())
        }
        other => return Err(format!("unknown field type {other:?}")),
    })
}

fn parse_default(kind: &Kind, raw: &str) -> Result<Default, String> {
    Ok(match raw {
        "now" => Default::Now,
        "today" => Default::Today,
        "uid" => Default::Uid,
        "company" => Default::Company,
        _ => Default::Value(match kind {
            Kind::Integer | Kind::Many2one(_) => Value::from(
                raw.parse::<i64>()
                    .map_err(|e| format!("default {raw:?}: {e}"))?,
            ),
            Kind::Float | Kind::Monetary => Value::from(
                raw.parse::<f64>()
                    .map_err(|e| format!("default {raw:?}: {e}"))?,
            ),
            Kind::Boolean => Value::Bool(raw == "true"),
            _ => Value::from(raw),
        }),
    })
}

/// Parses [`SCHEMA`].
pub fn parse(text: &str) -> Result<Schema, String> {
    let mut models: BTreeMap<String, Arc<Model>> = BTreeMap::new();
    let mut current: Option<Model> = None;
    for (n, line) in text.lines().enumerate() {
        let t = tokens(line);
        if t.is_empty() {
            continue;
        }
        let err = |m: String| format!("schema line {}: {m}: {line}", n + 1);
        if t[0] == "model" && !line.starts_with(char::is_whitespace) {
            if let Some(m) = current.take() {
                models.insert(m.name.clone(), Arc::new(m));
            }
            let mut model = Model {
                name: t.get(1).cloned().ok_or_else(|| err("model name".into()))?,
                description: t.get(2).cloned().unwrap_or_default(),
                order: "id".to_owned(),
                rec_name: None,
                mail_thread: false,
                activities: false,
                fields: Vec::new(),
                index: BTreeMap::new(),
                uniques: Vec::new(),
            };
            for opt in &t[3..] {
                if let Some(o) = opt.strip_prefix("order=") {
                    model.order = o.to_owned();
                } else if let Some(r) = opt.strip_prefix("rec=") {
                    model.rec_name = Some(r.to_owned());
                } else if opt == "thread" {
                    model.mail_thread = true;
                } else if opt == "activity" {
                    model.activities = true;
                } else {
                    return Err(err(format!("unknown model option {opt}")));
                }
            }
            current = Some(model);
            continue;
        }
        let model = current
            .as_mut()
            .ok_or_else(|| err("field outside a model".into()))?;
        if t[0] == "unique" && t.len() == 4 && !t[1].contains(':') {
            if t.len() != 4 {
                return Err(err("unique <name> <fields> \"message\"".into()));
            }
            model.uniques.push(Unique {
                name: t[1].clone(),
                fields: t[2].split(',').map(str::to_owned).collect(),
                message: t[3].clone(),
            });
            continue;
        }
        let name = t[0].clone();
        let kind = parse_kind(t.get(1).ok_or_else(|| err("field type".into()))?).map_err(err)?;
        let mut field = Field {
            string: default_string(&name),
            name: name.clone(),
            kind,
            required: false,
            readonly: false,
            default: None,
            ondelete: OnDelete::SetNull,
            related: None,
            translate: false,
        };
        for opt in &t[2..] {
            if opt == "req" {
                field.required = true;
            } else if opt == "ro" {
                field.readonly = true;
            } else if opt == "tr" {
                field.translate = true;
            } else if let Some(d) = opt.strip_prefix("default=") {
                field.default = Some(parse_default(&field.kind, d).map_err(err)?);
            } else if let Some(s) = opt.strip_prefix("string=") {
                field.string = s.to_owned();
            } else if let Some(r) = opt.strip_prefix("related=") {
                field.related = Some(r.split('.').map(str::to_owned).collect());
            } else if let Some(o) = opt.strip_prefix("ondelete=") {
                field.ondelete = match o {
                    "cascade" => OnDelete::Cascade,
                    "restrict" => OnDelete::Restrict,
                    "set_null" => OnDelete::SetNull,
                    other => return Err(err(format!("ondelete {other}"))),
                };
            } else {
                return Err(err(format!("unknown field option {opt}")));
            }
        }
        model.index.insert(name, model.fields.len());
        model.fields.push(field);
    }
    if let Some(m) = current.take() {
        models.insert(m.name.clone(), Arc::new(m));
    }
    Ok(Schema { models })
}
