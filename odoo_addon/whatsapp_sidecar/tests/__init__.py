from . import test_constraints
from . import test_composer
from . import test_buttons
from . import test_security
from . import test_window
from . import test_conversation
from . import test_views
from . import test_inbound_settings
