"""The people policies are meant to find, as users (issue 12): sign-up and sign-in with a one-time SMS
code (``codes``), sessions for pages and the app (``sessions``), accounts and what profile each speaks
for (``accounts``), push preferences and consent (``preferences``), "policies for me now" (``for_me``)
and the rights of the data subject (``rights``: export, erase).

The web views (``policy_push.web.views.me`` and ``me_pages``) are thin: everything that decides lives here.
"""
