"""Authentication and authorization (aws-contract.md §5): the authorizers a route can declare, the IAM
policy evaluation they share, and the factory that builds one :class:`Authorizer` per declared
authorizer. The pipeline's ``authorize`` phase (:mod:`server.stages.authorize`) calls them."""
