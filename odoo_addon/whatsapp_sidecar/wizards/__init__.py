from . import whatsapp_send_message
from . import whatsapp_send_partner_message
