# Copyright 2025 whatsapp-sidecar contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
{
    "name": "WhatsApp Sidecar",
    "summary": "WhatsApp Business Cloud API messaging driven by the whatsapp-sidecar daemon",
    "version": "17.0.1.0.0",
    "category": "Marketing",
    "author": "whatsapp-sidecar contributors",
    "license": "LGPL-3",
    "depends": ["base", "mail", "contacts", "sale_management", "account"],
    # Odoo Enterprise's `whatsapp` module declares some of the same model
    # names: installing both would corrupt the database, so Odoo must refuse.
    "excludes": ["whatsapp"],
    "data": [
        "security/whatsapp_sidecar_security.xml",
        "security/ir.model.access.csv",
        "security/whatsapp_sidecar_rules.xml",
        "views/whatsapp_account_views.xml",
        "views/whatsapp_template_views.xml",
        "views/whatsapp_conversation_views.xml",
        "views/whatsapp_message_views.xml",
        "views/whatsapp_webhook_event_views.xml",
        "views/whatsapp_campaign_views.xml",
        "views/whatsapp_button_action_views.xml",
        "views/whatsapp_interactive_scenario_views.xml",
        "views/whatsapp_text_views.xml",
        "wizards/whatsapp_send_message_views.xml",
        "wizards/whatsapp_send_partner_message_views.xml",
        "views/res_partner_views.xml",
        "views/sale_order_views.xml",
        "views/account_move_views.xml",
        "views/res_config_settings_views.xml",
        "views/whatsapp_menus.xml",
        "data/whatsapp_text_data.xml",
        "data/whatsapp_text_invoice_data.xml",
        "data/whatsapp_button_action_data.xml",
    ],
    "demo": [
        "demo/whatsapp_sidecar_demo.xml",
    ],
    "application": True,
}
