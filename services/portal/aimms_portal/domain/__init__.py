"""The portal's pure logic: turning a questionnaire into a form and a form back into answers."""
