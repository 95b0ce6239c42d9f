from . import test_constraints
from . import test_composer
from . import test_buttons
from . import test_security
from . import test_orders
from . import test_invoices
